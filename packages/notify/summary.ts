import { escapeMarkdown, escapeMermaidLabel } from '../core/escape.ts';
import {
  EVENT_EMOJI,
  headline,
  type NotifyEvent,
  STATE_EMOJI,
  type Stage,
  type StageState,
} from './model.ts';
import { renderReleasePlan } from './release-plan.ts';

const STATE_STYLE: Record<StageState, string> = {
  pending: 'fill:#f6f8fa,stroke:#8c959f,color:#57606a',
  running: 'fill:#ddf4ff,stroke:#0969da,color:#0550ae',
  succeeded: 'fill:#dafbe1,stroke:#1a7f37,color:#116329',
  failed: 'fill:#ffebe9,stroke:#cf222e,color:#a40e26',
  'rolled-back': 'fill:#fff8c5,stroke:#9a6700,color:#7d4e00',
  'awaiting-approval': 'fill:#fbefff,stroke:#8250df,color:#6639ba',
  skipped: 'fill:#f6f8fa,stroke:#d0d7de,color:#8c959f,stroke-dasharray:4 3',
  cancelled: 'fill:#f6f8fa,stroke:#57606a,color:#57606a,stroke-dasharray:4 3',
};

function classOf(state: StageState): string {
  return state.replace(/-/g, '_');
}

/** A left-to-right flowchart of the stages, each node coloured by its state. */
function renderStagesMermaid(stages: Stage[]): string {
  if (stages.length === 0) return '';
  const nodes = stages.map(
    (s, i) =>
      `s${i}["${escapeMermaidLabel(s.name)}<br/>${STATE_EMOJI[s.state]} ${s.state.replace(/-/g, ' ')}"]:::${classOf(s.state)}`,
  );
  const used = [...new Set(stages.map((s) => s.state))];
  return [
    '```mermaid',
    'flowchart LR',
    `  ${nodes.join(' --> ')}`,
    ...used.map((state) => `  classDef ${classOf(state)} ${STATE_STYLE[state]}`),
    '```',
  ].join('\n');
}

function cell(text: string | undefined): string {
  return text ? escapeMarkdown(text) : '';
}

function link(url: string | undefined, label: string): string {
  const text = escapeMarkdown(label);
  return url && /^https?:\/\/[^\s()<>]+$/.test(url) ? `[${text}](${url})` : text;
}

/**
 * A version or image reference as code when it is made only of what references are made of; any
 * other text (a `|` would end the table cell, `<` could open HTML) is escaped as plain text.
 */
function versionCell(version: string): string {
  return /^[\w.:@/+-]+$/.test(version) ? `\`${version}\`` : cell(version);
}

/** The job summary for one event: headline, facts table, stage diagram, free text. */
export function renderNotifySummary(e: NotifyEvent): string {
  const rows: [string, string][] = [];
  if (e.environment) rows.push(['Environment', link(e.environmentUrl, e.environment)]);
  if (e.version) rows.push(['Version', versionCell(e.version)]);
  if (e.actor) rows.push(['Actor', cell(e.actor)]);
  if (e.branch) rows.push(['Branch', cell(e.branch)]);
  if (e.sha)
    rows.push([
      'Commit',
      `${link(e.commitUrl, e.sha.slice(0, 7))}${e.commitTitle ? ` ${cell(e.commitTitle)}` : ''}`,
    ]);
  if (e.runUrl) rows.push(['Run', link(e.runUrl, e.runLabel || 'workflow run')]);

  const out = [`### ${EVENT_EMOJI[e.event]} ${escapeMarkdown(headline(e))}`, ''];
  if (e.text) out.push(`> ${escapeMarkdown(e.text)}`, '');
  if (e.link) out.push(link(e.link.url, e.link.text), '');
  if (rows.length > 0) {
    out.push('| field | value |', '|---|---|', ...rows.map(([k, v]) => `| **${k}** | ${v} |`), '');
  }
  if (e.plan) out.push(renderReleasePlan(e.plan));
  const diagram = renderStagesMermaid(e.stages);
  if (diagram) out.push(diagram, '');
  return `${out.join('\n')}\n`;
}
