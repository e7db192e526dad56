import { escapeMarkdown, escapeMermaidLabel } from '../notify/escape.ts';
import type { CanaryResult, StepRecord } from './canary.ts';

const PHASE_ICON = { progressing: '⏩', promoted: '✅', aborted: '↩️' } as const;
const VERDICT_ICON: Record<StepRecord['verdict'], string> = {
  passed: '✅',
  failed: '❌',
  inconclusive: '❔',
  error: '⚠️',
};

const pct = (v: number | null | undefined) =>
  v === null || v === undefined ? '' : `${Number((v * 100).toFixed(1))}%`;

/** The key metric of a step: the canary's measured error rate, else the first numeric check's mean. */
function keyMetric(s: StepRecord): { name: string; value: number } | undefined {
  if (s.traffic?.errorRate !== null && s.traffic?.errorRate !== undefined)
    return { name: 'canary error rate %', value: Number((s.traffic.errorRate * 100).toFixed(2)) };
  for (const c of s.gate?.checks ?? []) {
    const values = c.measurements
      .map((m) => m.value)
      .filter((v): v is number => v !== undefined && Number.isFinite(v));
    if (values.length > 0)
      return {
        name: `${c.name} (mean)`,
        value: Number((values.reduce((a, b) => a + b, 0) / values.length).toPrecision(4)),
      };
  }
  return undefined;
}

/** A Mermaid chart of the weight per step (bars) and the key metric (line). */
export function renderCanaryChart(steps: StepRecord[]): string {
  if (steps.length === 0) return '';
  const metrics = steps.map(keyMetric);
  const metricName = metrics.find(Boolean)?.name;
  const lines = [
    '```mermaid',
    'xychart-beta',
    `  title "Canary weight${metricName ? ` and ${escapeMermaidLabel(metricName)}` : ''} per step"`,
    `  x-axis [${steps.map((s) => `"${s.step}: ${s.weight}%${s.verdict === 'passed' ? '' : ' ✗'}"`).join(', ')}]`,
    '  y-axis "percent" 0 --> 100',
    `  bar [${steps.map((s) => s.effectiveWeight).join(', ')}]`,
  ];
  if (steps.some((s) => s.traffic?.share !== null && s.traffic?.share !== undefined))
    lines.push(
      `  line [${steps.map((s) => (s.traffic?.share != null ? Number((s.traffic.share * 100).toFixed(1)) : 0)).join(', ')}]`,
    );
  if (metricName) lines.push(`  line [${metrics.map((m) => m?.value ?? 0).join(', ')}]`);
  lines.push('```');
  return lines.join('\n');
}

export function renderCanarySummary(result: CanaryResult, deployment: string): string {
  const title =
    result.phase === 'promoted'
      ? `${deployment}: ${result.image} promoted`
      : result.phase === 'aborted'
        ? `${deployment}: canary of ${result.image || 'nothing'} aborted`
        : `${deployment}: canary of ${result.image} at ${result.weight}%`;
  const out = [
    `### ${PHASE_ICON[result.phase]} ${escapeMarkdown(title)}`,
    '',
    `> ${escapeMarkdown(result.reason)}`,
    '',
    `Router \`${result.router}\` · stable \`${escapeMarkdown(result.stableImage)}\` · canary \`${escapeMarkdown(result.image)}\` · mode \`${result.mode}\``,
    '',
  ];
  if (result.timings?.trafficRestoredAt !== undefined && result.timings.failedMeasurementAt !== undefined)
    out.push(
      `Traffic was back on stable ${result.timings.trafficRestoredAt - result.timings.failedMeasurementAt} ms after the failing measurement.`,
      '',
    );
  if (result.steps.length > 0) {
    out.push(renderCanaryChart(result.steps), '');
    out.push(
      '| step | weight | in effect | verdict | canary share | canary errors | reason |',
      '|---|---|---|---|---|---|---|',
      ...result.steps.map(
        (s) =>
          `| ${s.step}${s.earlier ? ' (earlier run)' : ''} | ${s.weight}% | ${s.effectiveWeight}% | ${VERDICT_ICON[s.verdict]} ${s.verdict} | ${pct(s.traffic?.share)} | ${s.traffic ? `${s.traffic.canary.errors}/${s.traffic.canary.requests}` : ''} | ${escapeMarkdown(s.reason)} |`,
      ),
      '',
    );
  }
  return `${out.join('\n')}\n`;
}

/** The `steps` output: each step's verdict and evidence. */
export function stepsJson(result: CanaryResult): string {
  return JSON.stringify(
    result.steps.map((s) => ({
      step: s.step,
      weight: s.weight,
      effectiveWeight: s.effectiveWeight,
      verdict: s.verdict,
      reason: s.reason,
      startedAt: s.startedAt,
      endedAt: s.endedAt,
      earlierRun: s.earlier ?? false,
      traffic: s.traffic ?? null,
      evidence: s.gate
        ? s.gate.checks.map((c) => ({
            name: c.name,
            expectation: c.expectation,
            counts: { success: c.successes, failure: c.failures, error: c.errors, noData: c.inconclusive },
            measurements: c.measurements.map((m) => ({
              round: m.round,
              state: m.state,
              value: m.value ?? null,
              message: m.message,
            })),
          }))
        : null,
    })),
  );
}
