import { formatDuration } from '../core/index.ts';
import type { MigrationResult } from './types.ts';

/**
 * Text from files, the database or error messages, made inert in Markdown: HTML is escaped,
 * Markdown punctuation backslashed, and line breaks flattened so a table cell stays one cell.
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/([\\`*_{}[\]()#+\-.!|~])/g, '\\$1')
    .replace(/\r?\n/g, ' ');
}

/** A fenced block whose fence is longer than any backtick run inside, so the content cannot close it. */
export function fencedBlock(content: string, language = ''): string {
  const longest = Math.max(2, ...[...content.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}${language}\n${content.replace(/\r\n?/g, '\n')}\n${fence}`;
}

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

/** The job summary for one run: what changed, the migrations table, plan SQL, drift, checks, failure. */
export function renderMigrationSummary(result: MigrationResult): string {
  const out: string[] = [];
  const verdict = result.ok ? 'succeeded' : 'failed';
  out.push(`### Migrations: ${escapeMarkdown(result.command)} ${verdict}`);
  out.push('');
  const facts = [
    `History table \`${result.table.replace(/`/g, '')}\``,
    `current version ${result.currentVersion ? escapeMarkdown(result.currentVersion) : 'none'}`,
  ];
  if (result.applied.length) facts.push(`${result.applied.length} applied`);
  if (result.reverted.length) facts.push(`${result.reverted.length} reverted`);
  if (result.baselined.length) facts.push(`${result.baselined.length} baselined`);
  facts.push(`${result.pending.length} ${result.command === 'plan' ? 'planned' : 'pending'}`);
  facts.push(`took ${formatDuration(result.durationMs)}`);
  out.push(`${facts.join(' · ')}`);
  if (result.backupPath) out.push('', `Backup: ${escapeMarkdown(result.backupPath)}`);

  if (result.failure) {
    out.push('', '#### Failure', '', fencedBlock(result.failure.message));
    if (result.restoreCommand)
      out.push(
        '',
        'Restore the backup taken before this run with:',
        '',
        fencedBlock(result.restoreCommand, 'sh'),
      );
  }

  if (result.migrations.length > 0) {
    out.push('', '| Version | Name | State | Duration |', '|---:|---|---|---:|');
    for (const row of result.migrations) {
      out.push(
        `| ${escapeMarkdown(row.version)} | ${escapeMarkdown(row.name)} | ${STATE_LABEL[row.state] ?? escapeMarkdown(row.state)} | ${
          row.durationMs !== undefined ? formatDuration(row.durationMs) : ''
        } |`,
      );
    }
  } else {
    out.push('', 'No migrations found.');
  }

  const planned = result.migrations.filter((r) => r.sql !== undefined);
  if (planned.length > 0) {
    out.push('', '#### Plan');
    for (const row of planned) {
      out.push(
        '',
        `**${escapeMarkdown(row.file ?? row.version)}**${row.transactional ? '' : ' (no transaction)'}`,
        '',
        fencedBlock(row.sql!, 'sql'),
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
  return `${out.join('\n')}\n`;
}
