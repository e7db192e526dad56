import { escapeMarkdown, escapeMermaidLabel } from '../core/escape.ts';
import type { BlueGreenResult, Color, Snapshot } from './blue-green.ts';

function side(prefix: string, title: string, s: Snapshot, service: string, preview: string): string[] {
  const node = (c: Color) => {
    const v = s.colors[c];
    const text = v.exists
      ? `${c}<br/>${escapeMermaidLabel(v.image)}<br/>${v.available}/${v.replicas} pods`
      : `${c}<br/>(none)`;
    return `    ${prefix}${c}["${text}"]`;
  };
  const lines = [
    `  subgraph ${prefix}side["${escapeMermaidLabel(title)}"]`,
    `    ${prefix}live(["${escapeMermaidLabel(service)}"])`,
    node('blue'),
    node('green'),
    `    ${prefix}live ==> ${prefix}${s.live}`,
  ];
  if (s.preview)
    lines.push(
      `    ${prefix}preview(["${escapeMermaidLabel(preview)}"])`,
      `    ${prefix}preview -.-> ${prefix}${s.preview}`,
    );
  lines.push('  end');
  return lines;
}

/** Before and after, side by side: which colour the live and preview Services send traffic to. */
function renderBlueGreenDiagram(result: BlueGreenResult, service: string, preview: string): string {
  return [
    '```mermaid',
    'flowchart LR',
    ...side('b_', 'before', result.before, service, preview),
    ...side('a_', 'after', result.after, service, preview),
    '  style b_blue fill:#dbeafe',
    '  style a_blue fill:#dbeafe',
    '  style b_green fill:#dcfce7',
    '  style a_green fill:#dcfce7',
    '```',
  ].join('\n');
}

export function renderBlueGreenSummary(
  result: BlueGreenResult,
  app: string,
  service: string,
  preview: string,
): string {
  const title = result.rolledBack
    ? `${app}: switched back to ${result.activeColor}`
    : result.switched
      ? `${app}: ${result.activeColor} is live`
      : result.ok
        ? `${app}: no switch needed, ${result.activeColor} is live`
        : `${app}: not switched, ${result.activeColor} stays live`;
  const icon = result.rolledBack ? '↩️' : result.ok ? '✅' : '❌';
  const out = [`### ${icon} ${escapeMarkdown(title)}`, '', `> ${escapeMarkdown(result.reason)}`, ''];
  out.push(renderBlueGreenDiagram(result, service, preview), '');
  const row = (name: string, g: BlueGreenResult['pre']) =>
    g ? `| ${name} | ${g.verdict} | ${escapeMarkdown(g.reason)} |` : `| ${name} | not run | |`;
  if (result.pre || result.post)
    out.push(
      '| checks | verdict | reason |',
      '|---|---|---|',
      row('pre-switch (preview)', result.pre),
      row('post-switch (live)', result.post),
      '',
    );
  if (result.timings?.switchedBackAt !== undefined && result.timings.failedMeasurementAt !== undefined)
    out.push(
      `Switched back ${result.timings.switchedBackAt - result.timings.failedMeasurementAt} ms after the failing measurement.`,
      '',
    );
  return `${out.join('\n')}\n`;
}
