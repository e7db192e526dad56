import { codeSpan, escapeMarkdown } from '../core/escape.ts';
import { type ChartSeries, renderXyChart } from '../notify/chart.ts';
import type { CanaryResult, StepRecord } from './canary.ts';
import { renderDeploySummary } from './deploy-summary.ts';

const PHASE_ICON = { progressing: '⏩', promoted: '✅', aborted: '↩️' } as const;
const VERDICT_ICON: Record<StepRecord['verdict'], string> = {
  passed: '✅',
  failed: '❌',
  inconclusive: '❔',
  error: '⚠️',
};

const pct = (v: number | null | undefined) =>
  v === null || v === undefined ? '' : `${Number((v * 100).toFixed(1))}%`;

/** Percent with one decimal, for chart values. */
const percent = (v: number) => Number((v * 100).toFixed(1));

/** The analysis' own view of the canary when its traffic was not measured: probes that failed. */
function probeErrors(s: StepRecord): { failed: number; total: number } | undefined {
  const all = (s.gate?.checks ?? []).flatMap((c) => c.measurements);
  if (all.length === 0) return undefined;
  return {
    failed: all.filter((m) => m.state === 'failure' || m.state === 'error').length,
    total: all.length,
  };
}

function shareCell(s: StepRecord, router: string): string {
  if (s.traffic?.share !== null && s.traffic?.share !== undefined)
    return `${pct(s.traffic.share)} of requests`;
  // Without metrics-path nothing counted requests; the replicas router's share is the share of pods.
  return router === 'replicas' ? `${s.effectiveWeight}% of pods (requests not measured)` : 'not measured';
}

function errorsCell(s: StepRecord): string {
  if (s.traffic && s.traffic.canary.requests > 0)
    return `${s.traffic.canary.errors}/${s.traffic.canary.requests} requests (${pct(s.traffic.errorRate)})`;
  const probes = probeErrors(s);
  if (probes) return `${probes.failed}/${probes.total} probes failed (${pct(probes.failed / probes.total)})`;
  return s.earlier ? 'earlier run' : 'not measured';
}

/** The canary's error rate per step: measured on its requests, else the share of failed analysis probes. */
function errorRate(s: StepRecord): number | undefined {
  if (s.traffic?.errorRate !== null && s.traffic?.errorRate !== undefined) return s.traffic.errorRate;
  const probes = probeErrors(s);
  return probes ? probes.failed / probes.total : undefined;
}

/** A Mermaid chart per step: the weight in effect (bars), the measured share and the canary's error rate (lines), all in percent. */
export function renderCanaryChart(steps: StepRecord[]): string {
  // One step draws a lone bar and lines of one point, which Mermaid leaves invisible: the table says it.
  if (steps.length < 2) return '';
  const series: ChartSeries[] = [{ kind: 'bar', values: steps.map((s) => s.effectiveWeight) }];
  const legend = ['bars: weight in effect'];
  if (steps.some((s) => s.traffic?.share !== null && s.traffic?.share !== undefined)) {
    series.push({ kind: 'line', values: steps.map((s) => percent(s.traffic?.share ?? 0)) });
    legend.push('red line: measured share of requests');
  }
  const errors = steps.map(errorRate);
  if (errors.some((e) => e !== undefined)) {
    series.push({ kind: 'line', values: errors.map((e) => percent(e ?? 0)) });
    legend.push(`${series.length === 2 ? 'red' : 'amber'} line: canary error rate`);
  }
  return `${legend.join(' · ')}\n\n${renderXyChart({
    title: 'Canary per step',
    categories: steps.map((s) => `${s.step}: ${s.weight}%${s.verdict === 'passed' ? '' : ' ✗'}`),
    yTitle: 'percent',
    yMax: 100,
    series,
    height: 240,
  })}`;
}

/**
 * A first release was a plain deploy: a headline of its own, as a canary's summary has, and the
 * deploy's facts without deploy-env's headline; in deploy.yml the notify step that ends the job
 * writes the environment's headline, metadata table and diagram, once.
 */
function renderFirstRelease(
  result: CanaryResult,
  deployment: string,
  { deployed, app, environment }: NonNullable<CanaryResult['firstRelease']>,
): string {
  const title = deployed.ok
    ? `✅ ${deployment}: ${result.image} deployed directly (first release)`
    : `${deployed.rolledBack ? '↩️' : '❌'} ${deployment}: first release of ${result.image} failed`;
  return `### ${escapeMarkdown(title)}\n\n> ${escapeMarkdown(result.reason)}\n\n${renderDeploySummary(deployed, { app, environment, header: false })}`;
}

export function renderCanarySummary(result: CanaryResult, deployment: string): string {
  if (result.firstRelease) return renderFirstRelease(result, deployment, result.firstRelease);
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
    `Router ${codeSpan(result.router)} · stable ${codeSpan(result.stableImage)} · canary ${codeSpan(result.image)} · mode ${codeSpan(result.mode)}`,
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
          `| ${s.step}${s.earlier ? ' (earlier run)' : ''} | ${s.weight}% | ${s.effectiveWeight}% | ${VERDICT_ICON[s.verdict]} ${s.verdict} | ${shareCell(s, result.router)} | ${errorsCell(s)} | ${escapeMarkdown(s.reason)} |`,
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
