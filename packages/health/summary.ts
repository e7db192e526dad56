import { formatDuration } from '../core/index.ts';
import { escapeMarkdown, escapeMermaidLabel } from '../notify/escape.ts';
import type { CheckReport, GateResult } from './gate.ts';
import type { MeasurementState } from './probes.ts';

const STATE_ICON: Record<MeasurementState, string> = {
  success: '✅',
  failure: '❌',
  error: '⚠️',
  'no-data': '❔',
};
const VERDICT_ICON = { passed: '✅', failed: '❌', inconclusive: '❔' } as const;

function formatValue(v: number | undefined): string {
  if (v === undefined) return '';
  return Number.isInteger(v) ? String(v) : Number(v.toPrecision(4)).toString();
}

/** A Mermaid xychart of a numeric check's values over the window, with its threshold as a second line. */
export function renderCheckChart(report: CheckReport, startedAt: number): string {
  const points = report.measurements.filter((m) => m.value !== undefined && Number.isFinite(m.value));
  if (points.length < 2) return '';
  const labels = points.map((m) => `"+${formatDuration(Math.max(0, m.at - startedAt))}"`);
  const values = points.map((m) => formatValue(m.value));
  const lines = [
    '```mermaid',
    'xychart-beta',
    `  title "${escapeMermaidLabel(report.name)}"`,
    `  x-axis [${labels.join(', ')}]`,
    `  line [${values.join(', ')}]`,
  ];
  for (const t of report.threshold ?? [])
    lines.push(`  line [${points.map(() => formatValue(t)).join(', ')}]`);
  lines.push('```');
  return lines.join('\n');
}

export function renderGateSummary(result: GateResult, title = 'Health gate'): string {
  const out = [
    `### ${VERDICT_ICON[result.verdict]} ${escapeMarkdown(title)}: ${result.verdict}`,
    '',
    `> ${escapeMarkdown(result.reason)}`,
    '',
    `${result.rounds} round(s) over ${formatDuration(result.endedAt - result.startedAt)}.`,
    '',
    '| check | expectation | ✅ | ❌ failed | ⚠️ errors | ❔ no data |',
    '|---|---|---|---|---|---|',
    ...result.checks.map(
      (c) =>
        `| ${c.name === result.decidedBy ? '**' : ''}${escapeMarkdown(c.name)}${c.name === result.decidedBy ? '**' : ''} | ${escapeMarkdown(c.expectation)} | ${c.successes} | ${c.failures} | ${c.errors} | ${c.inconclusive} |`,
    ),
    '',
  ];
  for (const c of result.checks) {
    const chart = renderCheckChart(c, result.startedAt);
    if (chart)
      out.push(
        `#### ${escapeMarkdown(c.name)}${c.threshold ? ` (threshold ${c.threshold.map(formatValue).join(' – ')})` : ''}`,
        '',
        chart,
        '',
      );
    out.push(
      `<details><summary>${escapeMarkdown(c.name)}: ${c.measurements.length} measurement(s)</summary>`,
      '',
      '| round | at | state | value | detail |',
      '|---|---|---|---|---|',
      ...c.measurements.map(
        (m) =>
          `| ${m.round} | +${formatDuration(Math.max(0, m.at - result.startedAt))} | ${STATE_ICON[m.state]} ${m.state} | ${formatValue(m.value)} | ${escapeMarkdown(m.message)} |`,
      ),
      '',
      '</details>',
      '',
    );
  }
  return `${out.join('\n')}\n`;
}

/** The `evidence` output: every measurement, compact enough for a step output. */
export function evidenceJson(result: GateResult): string {
  return JSON.stringify({
    verdict: result.verdict,
    reason: result.reason,
    decidedBy: result.decidedBy ?? null,
    startedAt: new Date(result.startedAt).toISOString(),
    endedAt: new Date(result.endedAt).toISOString(),
    checks: result.checks.map((c) => ({
      name: c.name,
      type: c.type,
      expectation: c.expectation,
      threshold: c.threshold ?? null,
      counts: { success: c.successes, failure: c.failures, error: c.errors, noData: c.inconclusive },
      measurements: c.measurements.map((m) => ({
        round: m.round,
        at: new Date(m.at).toISOString(),
        state: m.state,
        value: m.value ?? null,
        message: m.message,
      })),
    })),
  });
}
