import { escapeHtml, escapeMarkdown } from '../core/escape.ts';
import { formatDuration } from '../core/index.ts';
import { niceCeiling, renderXyChart } from '../notify/chart.ts';
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

const UNIT: Record<CheckReport['type'], { axis: string; suffix: string }> = {
  http: { axis: 'latency (ms)', suffix: ' ms' },
  kubernetes: { axis: 'available pods', suffix: ' pods' },
  prometheus: { axis: 'value', suffix: '' },
};

function numericPoints(report: CheckReport) {
  return report.measurements.filter(
    (m): m is typeof m & { value: number } => m.value !== undefined && Number.isFinite(m.value),
  );
}

/**
 * A Mermaid xychart of a numeric check's values over the window, its y axis scaled to the values
 * (the threshold is drawn only when it is near them), its x axis in minutes or seconds. A series
 * with fewer than two points or one constant value has no chart: `describeSeries` says it in words.
 */
function renderCheckChart(report: CheckReport, startedAt: number): string {
  const points = numericPoints(report);
  if (points.length < 2 || points.every((p) => p.value === points[0]!.value)) return '';
  const values = points.map((p) => p.value);
  const high = Math.max(...values);
  const drawn = (report.threshold ?? []).filter((t) => t >= 0 && t <= Math.max(high, 1) * 3);
  const spanMs = Math.max(0, points.at(-1)!.at - startedAt);
  const minutes = spanMs >= 120_000;
  return renderXyChart({
    title: `${report.name}: ${UNIT[report.type].axis}`,
    xRange: {
      title: minutes ? 'minutes' : 'seconds',
      max: Number((spanMs / (minutes ? 60_000 : 1000)).toFixed(1)),
    },
    yTitle: UNIT[report.type].axis,
    yMin: Math.min(0, ...values),
    yMax: niceCeiling(Math.max(high, ...drawn)),
    series: [
      { kind: 'line', values },
      ...drawn.map((t) => ({ kind: 'line' as const, values: points.map(() => t) })),
    ],
  });
}

/** One line on a check's series, in words: the range, the threshold and whether the chart draws it. */
function describeSeries(report: CheckReport): string {
  const points = numericPoints(report);
  if (points.length === 0) return '';
  const unit = UNIT[report.type].suffix;
  const values = points.map((p) => p.value);
  const low = Math.min(...values);
  const high = Math.max(...values);
  const range =
    low === high
      ? `${formatValue(low)}${unit} throughout`
      : `${formatValue(low)}–${formatValue(high)}${unit}`;
  const thresholds = (report.threshold ?? []).map((t) => {
    const shown = t <= Math.max(high, 1) * 3 && low !== high && points.length >= 2;
    return `threshold ${formatValue(t)}${unit}${shown ? ' (red line)' : ', not drawn: far from every value'}`;
  });
  return [`${points.length} measurement(s), ${range}`, ...thresholds].join(' · ');
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
    const words = describeSeries(c);
    if (chart || words) out.push(`#### ${escapeMarkdown(c.name)}`, '');
    if (words) out.push(escapeMarkdown(words), '');
    if (chart) out.push(chart, '');
    out.push(
      `<details><summary>${escapeHtml(c.name)}: ${c.measurements.length} measurement(s)</summary>`,
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

/** GitHub refuses a deployment status description longer than this. */
const STATUS_DESCRIPTION_MAX = 140;

/**
 * The `verdict-line` output: the verdict first, then the window and the checks, in at most 140
 * characters, so deploy.yml can record it as a GitHub deployment status and the production plan
 * reads it back (packages/github/release-plan.ts recognises the `health gate <verdict>` start).
 */
export function verdictLine(result: GateResult): string {
  const marked = result.checks.map((c) =>
    c.name === result.decidedBy
      ? `${c.name} (${result.verdict === 'inconclusive' ? 'no data' : 'failed'})`
      : c.name,
  );
  const rounds = `${result.rounds} round${result.rounds === 1 ? '' : 's'}`;
  const line = `health gate ${result.verdict}: ${rounds} over ${formatDuration(result.endedAt - result.startedAt)}; checks: ${marked.join(', ')}`;
  return line.length > STATUS_DESCRIPTION_MAX ? `${line.slice(0, STATUS_DESCRIPTION_MAX - 1)}…` : line;
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
