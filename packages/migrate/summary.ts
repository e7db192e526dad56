import { escapeHtml, escapeMarkdown, fencedBlock } from '../core/escape.ts';
import { formatDuration } from '../core/index.ts';
import type { MigrationResult } from './types.ts';

const STATE_LABEL: Record<string, string> = {
  applied: '✅ applied',
  migrated: '🆕 migrated',
  reverted: '↩️ reverted',
  baselined: '📌 baselined',
  pending: '⏳ pending',
  planned: '📝 planned',
  failed: '❌ failed',
  'rolled-back': '⏪ rolled back',
  missing: '❓ missing file',
};

/**
 * Migrations applied by earlier runs shown in the table: the newest few, for context. A reviewer
 * reads what this run did; the 500th re-run of a long history should not be a 500-row table.
 */
const EARLIER_APPLIED_SHOWN = 5;

/** GitHub drops a step summary over 1 MiB whole; what we render stays below, with room for the action's lines. */
const SUMMARY_BUDGET_BYTES = 1024 * 1024 - 16 * 1024;

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

/**
 * The job summary for one run: what changed, the migrations table, plan SQL (each migration in its
 * own `<details>`), drift, checks, failure. Never more than `budgetBytes`: the verdict, failure,
 * drift and checks always stay; table rows and then plan SQL are cut at the end, with a note.
 */
export function renderMigrationSummary(
  result: MigrationResult,
  options: { budgetBytes?: number } = {},
): string {
  const budget = options.budgetBytes ?? SUMMARY_BUDGET_BYTES;
  const out: string[] = [];
  const verdict = result.ok ? 'succeeded' : 'failed';
  out.push(`### Migrations: ${escapeMarkdown(result.command)} ${verdict}`);
  out.push('');
  const facts = [
    `History table \`${result.table.replace(/`/g, '')}\``,
    `current version ${result.currentVersion ? escapeMarkdown(result.currentVersion) : 'none'}`,
  ];
  // "by this run": the table's other ✅ rows were applied by earlier runs.
  if (result.applied.length) facts.push(`${result.applied.length} applied by this run`);
  if (result.reverted.length) facts.push(`${result.reverted.length} reverted by this run`);
  if (result.baselined.length) facts.push(`${result.baselined.length} baselined by this run`);
  facts.push(`${result.pending.length} ${result.command === 'plan' ? 'planned' : 'pending'}`);
  facts.push(`took ${formatDuration(result.durationMs)}`);
  out.push(`${facts.join(' · ')}`);
  if (result.backupPath) out.push('', `Backup: ${escapeMarkdown(result.backupPath)}`);
  if (result.restoredFrom) out.push('', `Restored from: ${escapeMarkdown(result.restoredFrom)}`);
  const drill = result.backupCheck;
  if (drill) {
    const since = drill.appliedSinceBackup.length
      ? ` (${drill.appliedSinceBackup.length} migration(s) applied since the backup: ${escapeMarkdown(drill.appliedSinceBackup.join(', '))})`
      : '';
    out.push(
      '',
      `Backup drill: ${escapeMarkdown(drill.file)} restored into the scratch database ${escapeMarkdown(drill.scratchDatabase)} ` +
        `(${drill.dropped ? 'dropped afterwards' : '**not dropped: drop it by hand**'}): ${drill.tables} table(s), ` +
        `history at version ${escapeMarkdown(drill.version ?? 'none')}; the live database is at ${escapeMarkdown(drill.liveVersion ?? 'none')}${since}. ` +
        "The table below and the checks are the backup's.",
    );
  }

  if (result.failure) {
    const restoreBelow = result.restoreCommand && !result.restoredFrom ? result.restoreCommand : undefined;
    // The restore command is long: shown once, in its own block below, not inside the message too.
    const message = restoreBelow
      ? result.failure.message
          .split('\n')
          .filter((line) => !line.includes(restoreBelow))
          .join('\n')
      : result.failure.message;
    // A quoted paragraph wraps at the page's width; a code block (fenced or <pre>) runs past it,
    // which cut the message's last sentence off.
    const quoted = message
      .split(/\r?\n/)
      .filter((line) => line.trim())
      .map((line) => `> ${escapeMarkdown(line)}`)
      .join('<br>\n');
    out.push('', '#### Failure', '', quoted);
    if (result.restoreCommand && !result.restoredFrom)
      out.push(
        '',
        'To return the database to the backup taken before this run (what the migrations created since is dropped, ' +
          'in one transaction), run run-migrations with `command: restore`, `backup-path` and `confirm-restore` ' +
          '(the database name), or run the command below.',
        '',
        '<details><summary>restore command</summary>',
        '',
        fencedBlock(result.restoreCommand, 'sh'),
        '',
        '</details>',
      );
  }
  const tail = renderTail(result);

  // Everything this run touched or left to do stays; of the migrations applied before it, only the
  // newest few (the table is in version order, so they are the last ones of that state).
  const earlier = result.migrations.filter((row) => row.state === 'applied');
  const hidden = new Set(earlier.slice(0, Math.max(0, earlier.length - EARLIER_APPLIED_SHOWN)));
  const rows = result.migrations
    .filter((row) => !hidden.has(row))
    .map(
      (row) =>
        `| ${escapeMarkdown(row.version)} | ${escapeMarkdown(row.name)} | ${STATE_LABEL[row.state] ?? escapeMarkdown(row.state)} | ${
          row.durationMs !== undefined ? formatDuration(row.durationMs) : ''
        } |`,
    );
  const planned = result.migrations.filter((r) => r.sql !== undefined);
  const blocks = planned.map((row) =>
    [
      '',
      `<details><summary><b>${escapeHtml(row.file ?? row.version)}</b>${row.transactional ? '' : ' (no transaction)'}</summary>`,
      '',
      fencedBlock(row.sql!, 'sql'),
      '',
      '</details>',
    ].join('\n'),
  );

  // Room for the cut notes, whatever they say.
  let left = budget - bytes(out.join('\n')) - bytes(tail) - 1024;
  const table: string[] = [];
  let rowsCut = 0;
  if (rows.length > 0) {
    const head = ['', '| Version | Name | State | Duration |', '|---:|---|---|---:|'];
    if (hidden.size > 0)
      head.unshift(
        '',
        `${hidden.size} migration(s) applied before this run are not listed, only the newest ${EARLIER_APPLIED_SHOWN}; the \`result\` output lists every one.`,
      );
    left -= bytes(head.join('\n'));
    table.push(...head);
    for (const [i, line] of rows.entries()) {
      if (bytes(line) + 1 > left) {
        rowsCut = rows.length - i;
        break;
      }
      left -= bytes(line) + 1;
      table.push(line);
    }
  } else {
    table.push('', 'No migrations found.');
  }
  const plan: string[] = [];
  let blocksCut = 0;
  if (blocks.length > 0) {
    plan.push('', '#### Plan');
    for (const [i, block] of blocks.entries()) {
      if (bytes(block) + 1 > left) {
        // The first migration that does not fit shows its beginning, when there is room for some.
        const row = planned[i]!;
        const room = left - 2048;
        if (room > 8 * 1024) {
          const head = cutToBytes(row.sql!, room);
          plan.push(
            [
              '',
              `<details><summary><b>${escapeHtml(row.file ?? row.version)}</b>${row.transactional ? '' : ' (no transaction)'}: the first ${formatBytes(bytes(head))} of ${formatBytes(bytes(row.sql!))}</summary>`,
              '',
              fencedBlock(head, 'sql'),
              '',
              '</details>',
            ].join('\n'),
          );
        }
        blocksCut = blocks.length - i - (room > 8 * 1024 ? 1 : 0);
        if (room > 8 * 1024 && blocksCut === 0) blocksCut = -1;
        break;
      }
      left -= bytes(block) + 1;
      plan.push(block);
    }
  }
  out.push(...table);
  if (rowsCut > 0)
    out.push(
      '',
      `> ✂️ ${rowsCut} more migration(s) are not listed: GitHub drops a step summary over 1 MiB. The \`result\` output lists them all.`,
    );
  out.push(...plan);
  if (blocksCut > 0)
    out.push(
      '',
      `> ✂️ The SQL of ${blocksCut} more migration(s) is not shown: GitHub drops a step summary over 1 MiB. Their files hold it.`,
    );
  else if (blocksCut < 0)
    out.push(
      '',
      "> ✂️ The last migration's SQL is cut: GitHub drops a step summary over 1 MiB. Its file holds it.",
    );
  return `${out.join('\n')}${tail}\n`;
}

/** The longest start of `text` within `max` UTF-8 bytes, cut at a line end when one is near. */
function cutToBytes(text: string, max: number): string {
  let cut = Buffer.from(text, 'utf8').subarray(0, max).toString('utf8');
  if (cut.endsWith('\ufffd')) cut = cut.slice(0, -1); // half a character
  const line = cut.lastIndexOf('\n');
  return line > cut.length * 0.9 ? cut.slice(0, line) : cut;
}

const formatBytes = (n: number) =>
  n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`;

/** Drift, checks and constraints: short, and always shown. */
function renderTail(result: MigrationResult): string {
  const out: string[] = [];
  // A history row that failed part-way blocks up: what it recorded and how to get past it.
  const stuck = result.migrations.filter((r) => r.state === 'failed' && r.error);
  if (stuck.length > 0 && !result.failure) {
    out.push(
      '',
      '#### Failed part-way (blocks up)',
      '',
      ...stuck.map(
        (r) => `- ${escapeMarkdown(r.file ?? r.version)}: ${escapeMarkdown(r.error!.slice(0, 500))}`,
      ),
      '',
      'It ran outside a transaction, so part of it may be applied. Inspect the database, then fix the file so it can run again and re-run up, revert it with down, or mark it applied with baseline (target = its version).',
    );
  }
  if (result.lint && result.lint.length > 0) {
    out.push('', '#### Safety lint', '', '| Where | Rule | Why | Instead |', '|---|---|---|---|');
    for (const f of result.lint) {
      const rule = f.acknowledged
        ? `✅ ${escapeMarkdown(f.rule)} (acknowledged: ${escapeMarkdown(f.reason ?? '')})`
        : `⚠️ ${escapeMarkdown(f.rule)}`;
      out.push(
        `| ${escapeMarkdown(`${f.file}:${f.line}`)} | ${rule} | ${escapeMarkdown(f.why)} | ${escapeMarkdown(f.instead)} |`,
      );
    }
  }
  if (result.drift.length > 0) {
    out.push('', '#### Drift', '', '| Kind | Migration | Detail |', '|---|---|---|');
    for (const d of result.drift) {
      out.push(
        `| ${escapeMarkdown(d.kind)} | ${escapeMarkdown(d.file ?? `${d.version} ${d.name}`)} | ${escapeMarkdown(d.detail)} |`,
      );
    }
  }

  if (result.checks.length > 0) {
    out.push('', '#### Integrity checks', '', '| Check | Result | Rows | Sample |', '|---|---|---:|---|');
    for (const c of result.checks) {
      const verdictText = c.error ? '❌ error' : c.passed ? '✅ passed' : '❌ failed';
      const sample = c.error ?? c.sample.slice(0, 3).join(' ');
      out.push(`| ${escapeMarkdown(c.name)} | ${verdictText} | ${c.rowCount} | ${escapeMarkdown(sample)} |`);
    }
  }

  if (result.constraints.length > 0) {
    out.push(
      '',
      '#### Constraints validated (were NOT VALID)',
      '',
      '| Table | Constraint | Result |',
      '|---|---|---|',
    );
    for (const c of result.constraints) {
      out.push(
        `| ${escapeMarkdown(`${c.schema}.${c.table}`)} | ${escapeMarkdown(c.constraint)} | ${c.validated ? '✅ validated' : `❌ ${escapeMarkdown(c.error ?? 'not valid')}`} |`,
      );
    }
  }
  return out.length > 0 ? `\n${out.join('\n')}` : '';
}
