import { codeSpan, escapeHtml, escapeMarkdown, fencedBlock } from '../core/escape.ts';
import { formatDuration } from '../core/index.ts';
import type { DeployResult } from './deploy.ts';

const ACTION_ICON = { created: '🆕', configured: '✏️', unchanged: '➖', pruned: '🗑️' } as const;

export function renderDeploySummary(
  result: DeployResult,
  ctx: {
    app: string;
    environment: string;
    environmentUrl?: string;
    /**
     * false where a notify step ends the same job with its own headline and metadata table
     * (deploy.yml): the facts only this deploy knows (namespace, images, revisions, duration)
     * then stay, as one line under a sub-heading, so the summary has one headline and one table.
     */
    header?: boolean;
  },
): string {
  const header = ctx.header !== false || result.dryRun;
  const title = result.dryRun
    ? `🔍 Dry run: ${ctx.app} to ${ctx.environment}`
    : result.ok
      ? `✅ ${ctx.app} deployed to ${ctx.environment}`
      : result.notRolledBack.length > 0
        ? `🚨 NOT ROLLED BACK: ${ctx.app} failed in ${ctx.environment} and the failed release is still deployed`
        : result.rolledBack
          ? `↩️ ${ctx.app} failed in ${ctx.environment} and was rolled back`
          : `❌ ${ctx.app} failed to deploy to ${ctx.environment}`;
  const out = header
    ? [`### ${escapeMarkdown(title)}`, '']
    : [
        `#### Deploy: ${
          result.ok
            ? 'applied and rolled out'
            : result.notRolledBack.length > 0
              ? 'failed, NOT ROLLED BACK'
              : result.rolledBack
                ? 'failed and rolled back'
                : 'failed'
        }`,
        '',
      ];
  if (result.failure) out.push(`> ${escapeMarkdown(result.failure)}`, '');
  for (const n of result.notRolledBack) out.push(`> **NOT ROLLED BACK:** ${escapeMarkdown(n.message)}`, '');
  const rows: [string, string][] = [
    ['Environment', `${escapeMarkdown(ctx.environment)} (namespace ${codeSpan(result.namespace)})`],
  ];
  if (ctx.environmentUrl) {
    // A URL can come from a branch name: link it only when it cannot break out of the link.
    const safe = /^https?:\/\/[^\s()<>]+$/.test(ctx.environmentUrl);
    rows.push([
      'URL',
      safe
        ? `[${escapeMarkdown(ctx.environmentUrl)}](${ctx.environmentUrl})`
        : escapeMarkdown(ctx.environmentUrl),
    ]);
  }
  for (const w of result.workloads) {
    const from = w.previousImages.join(', ');
    const to = w.images.join(', ');
    rows.push([
      `${w.kind}/${escapeMarkdown(w.name)}`,
      `${from && from !== to ? `${codeSpan(from)} → ` : ''}${codeSpan(to)}${w.previousRevision || w.revision ? ` · revision ${w.previousRevision ?? '–'} → ${w.revision ?? '–'}` : ''}`,
    ]);
  }
  rows.push(['Duration', formatDuration(result.durationMs)]);
  if (result.lock?.waitedMs && result.lock.waitedMs > 1000)
    rows.push([
      'Lock',
      `waited ${formatDuration(result.lock.waitedMs)}${result.lock.tookOverFrom ? ` (took over from ${escapeMarkdown(result.lock.tookOverFrom)})` : ''}`,
    ]);
  if (header) out.push('| field | value |', '|---|---|', ...rows.map(([k, v]) => `| **${k}** | ${v} |`), '');
  else out.push(rows.map(([k, v]) => `**${k}**: ${v}`).join(' · '), '');

  out.push('#### Objects', '', '| object | action | from |', '|---|---|---|');
  for (const a of result.applied) {
    const verb = result.dryRun && a.action !== 'unchanged' ? `would be ${a.action}` : a.action;
    out.push(
      `| ${a.kind}/${escapeMarkdown(a.name)} | ${ACTION_ICON[a.action]} ${verb} | ${escapeMarkdown(a.source)} |`,
    );
  }
  out.push('');
  const counts = ['created', 'configured', 'unchanged', 'pruned']
    .map((k) => `${result.applied.filter((a) => a.action === k).length} ${k}`)
    .join(', ');
  out.push(`${counts}.`, '');

  if (result.dryRun) {
    for (const a of result.applied.filter((x) => x.diff))
      out.push(
        `<details><summary>${escapeHtml(`${a.kind}/${a.name}`)}</summary>`,
        '',
        fencedBlock(a.diff!, 'diff'),
        '',
        '</details>',
        '',
      );
    return `${out.join('\n')}\n`;
  }

  for (const w of result.workloads) {
    out.push(
      `#### Rollout of ${w.kind}/${escapeMarkdown(w.name)}: ${w.ok ? 'succeeded' : 'failed'}`,
      '',
      '| at | event |',
      '|---|---|',
    );
    for (const e of w.timeline) out.push(`| +${formatDuration(e.at)} | ${escapeMarkdown(e.message)} |`);
    out.push('');
    if (w.problems.length > 0) {
      out.push('| pod | container | reason | detail | restarts |', '|---|---|---|---|---|');
      for (const p of w.problems)
        out.push(
          `| ${escapeMarkdown(p.pod)} | ${escapeMarkdown(p.container ?? '')} | ${p.reason} | ${escapeMarkdown(p.message)} | ${p.restarts} |`,
        );
      out.push('');
    }
    for (const d of w.diagnostics) {
      out.push(
        `<details><summary>pod ${escapeHtml(d.pod)}: events and last log lines</summary>`,
        '',
        fencedBlock(d.events.join('\n') || '(no events)'),
        '',
      );
      if (d.logs) out.push(fencedBlock(d.logs.trimEnd()), '');
      out.push('</details>', '');
    }
    if (w.rollback) {
      out.push(
        w.rollback.failed
          ? `**Rollback: NOT ROLLED BACK.** ${escapeMarkdown(w.rollback.message)}`
          : w.rollback.rolledBack
            ? `**Rollback:** ${escapeMarkdown(w.rollback.message)} — ${w.rollback.ok ? 'the previous version is running again' : `the rollback did not finish: ${escapeMarkdown(w.rollback.waitMessage)}`}`
            : `**Rollback:** ${escapeMarkdown(w.rollback.message)}`,
        '',
      );
    }
  }
  return `${out.join('\n')}\n`;
}
