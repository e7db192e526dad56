import { codeSpan, escapeHtml, escapeMarkdown, fencedBlock } from '../core/escape.ts';
import type { ManifestPlan, ObjectPlan } from './plan.ts';

const CHANGE_ICON = { added: '🆕', changed: '✏️', unchanged: '➖', removed: '🗑️', unreadable: '🔒' } as const;

/** At most this many field lines per object: a reviewer reads the call-outs, the rest is in the output. */
const FIELD_LINES = 60;

function diffBlock(p: ObjectPlan): string {
  const lines = p.fields.flatMap((f) => [
    ...(f.before !== undefined ? [`- ${f.path}: ${f.before}`] : []),
    ...(f.after !== undefined ? [`+ ${f.path}: ${f.after}`] : []),
  ]);
  const shown = lines.slice(0, FIELD_LINES);
  if (lines.length > shown.length)
    shown.push(`# … ${lines.length - shown.length} more line(s) in the plan output`);
  return fencedBlock(shown.join('\n'), 'diff');
}

function describe(p: ObjectPlan): string {
  if (p.change === 'removed')
    return `no longer in the manifests; deleted only when the deploy prunes${p.callouts.length ? ` (${p.callouts.join('; ')})` : ''}`;
  if (p.change === 'unchanged') return '';
  if (p.change === 'unreadable') return 'not readable with the plan credentials: its change is unknown';
  if (p.change === 'added' && !p.replaces) return 'new object';
  const words = p.callouts.length > 0 ? p.callouts.join('; ') : `${p.fields.length} field(s)`;
  if (!p.replaces) return words;
  // A blue-green colour's call-outs begin with which colour gets the template, against which live one.
  return p.kind === 'Deployment' ? words : `new generation of ${p.replaces}: ${words}`;
}

/**
 * The manifest part of the production plan: one row per object that changes, with the changes a
 * reviewer must see in words, then each object's field diff folded away.
 */
export function renderManifestPlan(
  plan: ManifestPlan,
  ctx: { app: string; environment: string; image?: string },
): string {
  const { counts } = plan;
  const out = [
    `### 📋 What ${escapeMarkdown(ctx.environment)} will change: ${escapeMarkdown(ctx.app)}`,
    '',
    `${ctx.image ? `Image ${codeSpan(ctx.image)} · ` : ''}namespace ${codeSpan(plan.namespace)} · rendered objects compared with the live ones through read-only reads (no dry run) · Secret values never shown`,
    '',
    `**${counts.changed} changed · ${counts.added} added · ${counts.removed} no longer in the manifests · ${counts.unchanged} unchanged${counts.unreadable ? ` · ${counts.unreadable} not readable` : ''}**`,
    '',
  ];
  if (!plan.namespaceExists)
    out.push(`> Namespace ${codeSpan(plan.namespace)} does not exist yet: every object is new.`, '');
  const changed = plan.objects.filter((p) => p.change !== 'unchanged');
  if (changed.length === 0) {
    out.push('Nothing in the manifests differs from what runs now.', '');
  } else {
    out.push('| object | change | what changes |', '|---|---|---|');
    for (const p of changed)
      out.push(
        `| ${escapeMarkdown(`${p.kind}/${p.name}`)} | ${CHANGE_ICON[p.change]} ${p.change} | ${escapeMarkdown(describe(p))} |`,
      );
    out.push('');
    for (const p of changed.filter((x) => x.fields.length > 0))
      out.push(
        `<details><summary>${escapeHtml(`${p.kind}/${p.name}`)}: ${p.fields.length} field(s)</summary>`,
        '',
        diffBlock(p),
        '',
        '</details>',
        '',
      );
  }
  const unchanged = plan.objects.filter((p) => p.change === 'unchanged');
  if (unchanged.length > 0)
    out.push(
      `Unchanged: ${unchanged.map((p) => escapeMarkdown(`${p.kind}/${p.name}${p.callouts.length ? ` (${p.callouts.join('; ')})` : ''}`)).join(', ')}.`,
      '',
    );
  return `${out.join('\n')}\n`;
}

/** One line for Slack and the log: what the plan changes, only the counts that are not zero. */
export function manifestPlanLine(plan: ManifestPlan): string {
  const { counts } = plan;
  const parts = [
    counts.changed ? `${counts.changed} changed` : '',
    counts.added ? `${counts.added} added` : '',
    counts.removed ? `${counts.removed} no longer in the manifests` : '',
    counts.unreadable ? `${counts.unreadable} not readable` : '',
  ].filter(Boolean);
  return parts.length ? `objects: ${parts.join(', ')}` : 'no object changes';
}
