import {
  type Clock,
  errorMessage,
  formatDuration,
  InputError,
  type Logger,
  systemClock,
} from '../core/index.ts';
import type { Check } from './checks.ts';
import {
  type KubeAccess,
  type Measurement,
  type ProbeContext,
  PromQueryRejected,
  probe,
  queryPrometheus,
} from './probes.ts';

export type Verdict = 'passed' | 'failed' | 'inconclusive';

export interface GateOptions {
  checks: Check[];
  initialDelayMs: number;
  intervalMs: number;
  /** Either a number of measurement rounds, or a soak window the gate must stay green for. */
  count?: number;
  durationMs?: number;
  clock?: Clock;
  logger: Logger;
  fetch?: typeof fetch;
  kube?: KubeAccess;
  signal?: AbortSignal;
  /** Called after every measurement, for progress output and the canary's step analysis. */
  onMeasurement?: (m: Measurement) => void;
}

export interface CheckReport {
  name: string;
  type: Check['type'];
  /** The condition, threshold or expectation, in words. */
  expectation: string;
  threshold?: number[];
  successes: number;
  failures: number;
  errors: number;
  inconclusive: number;
  measurements: Measurement[];
}

export interface GateResult {
  verdict: Verdict;
  /** Why the gate ended as it did, in one sentence. */
  reason: string;
  /** The check that decided a failed or inconclusive verdict. */
  decidedBy?: string;
  rounds: number;
  startedAt: number;
  endedAt: number;
  /** When the gate reached its verdict relative to the deciding measurement (engine overhead). */
  checks: CheckReport[];
}

function expectationOf(check: Check): { expectation: string; threshold?: number[] } {
  switch (check.type) {
    case 'http': {
      const parts = [
        `${check.method} ${check.target.kind === 'url' ? check.target.url : `service ${check.target.namespace}/${check.target.service}${check.target.port ? `:${check.target.port}` : ''}${check.target.path}`} → ${check.expectStatus.join('/')}`,
      ];
      if (check.jsonPathText)
        parts.push(
          `${check.jsonPathText} ${check.matches ? `=~ ${check.matches}` : `== ${JSON.stringify(check.equals)}`}`,
        );
      if (check.maxLatencyMs !== undefined) parts.push(`latency ≤ ${check.maxLatencyMs} ms`);
      return {
        expectation: parts.join(', '),
        ...(check.maxLatencyMs !== undefined ? { threshold: [check.maxLatencyMs] } : {}),
      };
    }
    case 'prometheus':
      return {
        expectation: `${check.preset ? `${check.preset}: ` : ''}${check.query} ${check.condition.text}`,
        threshold:
          check.condition.op === 'between'
            ? [check.condition.low, check.condition.high]
            : [check.condition.value],
      };
    case 'kubernetes':
      return {
        expectation: `deployment/${check.workload} in ${check.namespace} fully available, ≤ ${check.maxRestarts} restarts, no crash loops`,
      };
  }
}

/**
 * Rejects what would make every measurement meaningless before the window starts: a PromQL
 * query Prometheus refuses. A Prometheus that cannot be reached now is not an input error; the
 * window's error limits deal with it.
 */
async function preflight(checks: Check[], fetchImpl: typeof fetch): Promise<void> {
  await Promise.all(
    checks.map(async (check, index) => {
      if (check.type !== 'prometheus') return;
      try {
        await queryPrometheus(check, fetchImpl);
      } catch (error) {
        if (error instanceof PromQueryRejected) {
          throw new InputError(
            `checks[${index}] (${check.name}).query`,
            `was rejected by Prometheus: ${error.message}`,
            'a PromQL instant query that Prometheus accepts',
          );
        }
      }
    }),
  );
}

/**
 * Measures every check once per interval for the window, and decides: `failed` as soon as a
 * check crosses its failure or consecutive-error limit, `inconclusive` as soon as one crosses its
 * inconclusive limit, `passed` only when the whole window was measured without either and every
 * check was measured at least once (errors alone end `failed`, no data alone `inconclusive`).
 */
export async function runHealthGate(options: GateOptions): Promise<GateResult> {
  const clock = options.clock ?? systemClock;
  const log = options.logger;
  const fetchImpl = options.fetch ?? fetch;
  if (options.count === undefined && options.durationMs === undefined) {
    throw new InputError(
      'count',
      'and duration are both unset',
      'count (a number of measurements) or duration (a soak window such as 15m)',
    );
  }
  if (options.intervalMs <= 0)
    throw new InputError('interval', 'must be longer than zero', 'a duration such as 30s');
  const rounds = options.count ?? Math.floor(options.durationMs! / options.intervalMs) + 1;

  await preflight(options.checks, fetchImpl);

  const reports: CheckReport[] = options.checks.map((c) => ({
    name: c.name,
    type: c.type,
    ...expectationOf(c),
    successes: 0,
    failures: 0,
    errors: 0,
    inconclusive: 0,
    measurements: [],
  }));
  const consecutiveErrors = new Map<string, number>();
  const ctx: ProbeContext = {
    fetch: fetchImpl,
    ...(options.kube ? { kube: options.kube } : {}),
    memory: new Map(),
  };
  const startedAt = clock.now();
  const windowText =
    options.count !== undefined
      ? `${rounds} measurements`
      : `a ${formatDuration(options.durationMs!)} window`;
  log.info(
    `Health gate: ${options.checks.length} check(s), ${windowText}, every ${formatDuration(options.intervalMs)}${options.initialDelayMs ? ` after ${formatDuration(options.initialDelayMs)}` : ''}`,
  );

  const finish = (verdict: Verdict, reason: string, round: number, decidedBy?: string): GateResult => ({
    verdict,
    reason,
    ...(decidedBy ? { decidedBy } : {}),
    rounds: round,
    startedAt,
    endedAt: clock.now(),
    checks: reports,
  });

  if (options.initialDelayMs > 0) await clock.sleep(options.initialDelayMs, options.signal);
  const firstRoundAt = clock.now();

  for (let round = 1; round <= rounds; round++) {
    const results = await Promise.all(
      options.checks.map(async (check) => {
        const at = clock.now();
        try {
          return { check, at, result: await probe(check, ctx) };
        } catch (error) {
          // A probe that cannot run at all (no cluster access for a kubernetes check) is a setup bug.
          throw new InputError(
            `checks (${check.name})`,
            errorMessage(error),
            'checks whose targets this step can reach',
          );
        }
      }),
    );
    let decision: GateResult | undefined;
    for (const [index, { check, at, result }] of results.entries()) {
      const report = reports[index]!;
      let state = result.state;
      if (state === 'no-data')
        state = check.noData === 'fail' ? 'failure' : check.noData === 'pass' ? 'success' : 'no-data';
      const m: Measurement = { check: check.name, round, at, ...result, state };
      report.measurements.push(m);
      options.onMeasurement?.(m);
      const line = `[${round}/${rounds}] ${check.name}: ${state}${m.value !== undefined ? ` (${m.value})` : ''} — ${m.message}`;
      if (state === 'success') {
        report.successes++;
        consecutiveErrors.set(check.name, 0);
        log.info(line);
      } else if (state === 'failure') {
        report.failures++;
        consecutiveErrors.set(check.name, 0);
        log.warning(line);
        if (report.failures > check.failureLimit && !decision) {
          decision = finish(
            'failed',
            `${check.name} failed ${report.failures} time(s), more than its failure limit of ${check.failureLimit}: ${m.message}`,
            round,
            check.name,
          );
        }
      } else if (state === 'error') {
        report.errors++;
        const n = (consecutiveErrors.get(check.name) ?? 0) + 1;
        consecutiveErrors.set(check.name, n);
        log.warning(line);
        if (n > check.consecutiveErrorLimit && !decision) {
          decision = finish(
            'failed',
            `${check.name} could not be measured ${n} times in a row, more than its consecutive error limit of ${check.consecutiveErrorLimit}: ${m.message}`,
            round,
            check.name,
          );
        }
      } else {
        report.inconclusive++;
        consecutiveErrors.set(check.name, 0);
        log.warning(line);
        if (report.inconclusive > check.inconclusiveLimit && !decision) {
          decision = finish(
            'inconclusive',
            `${check.name} had no data ${report.inconclusive} time(s), more than its inconclusive limit of ${check.inconclusiveLimit}: ${m.message}`,
            round,
            check.name,
          );
        }
      }
    }
    if (decision) return decision;
    if (round < rounds) {
      const nextAt = firstRoundAt + round * options.intervalMs;
      await clock.sleep(Math.max(0, nextAt - clock.now()), options.signal);
    }
  }
  // A window of transient errors amid successes passes (Argo's consecutive-error rule), but a
  // check that never produced one measurement has shown nothing: with a short window (count 1,
  // a canary step's 3 analyses) every probe can error within the limit, and that must not pass.
  for (const [index, check] of options.checks.entries()) {
    const report = reports[index]!;
    if (report.successes + report.failures > 0) continue;
    const last = report.measurements.at(-1);
    const tried = `${report.measurements.length} attempt(s)`;
    if (report.errors > 0) {
      const lastError = report.measurements.findLast((m) => m.state === 'error');
      return finish(
        'failed',
        `${check.name} was never measured (${tried}, every one an error or without data); last error: ${lastError?.message ?? 'none'}`,
        rounds,
        check.name,
      );
    }
    return finish(
      'inconclusive',
      `${check.name} was never measured (${tried}, none with data): ${last?.message ?? 'no measurement'}`,
      rounds,
      check.name,
    );
  }
  const span = formatDuration(clock.now() - firstRoundAt);
  return finish(
    'passed',
    `all ${options.checks.length} check(s) stayed within their limits for ${rounds} measurements over ${span}`,
    rounds,
  );
}
