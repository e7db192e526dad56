import type { CheckReport, GateResult } from '../../packages/health/gate.ts';
import type { Measurement } from '../../packages/health/probes.ts';
import type { CanaryResult } from '../../packages/rollout/canary.ts';

/** Results shaped like the rehearsal's, for the summary tests and the rendering tests. */
export const IMAGE =
  'ghcr.io/acme/shop@sha256:47257247a693c36f232860ad9fb04382e5d2e31e5563bda006b99b6abb6df2e9';
export const STABLE =
  'ghcr.io/acme/shop@sha256:59ada84cbe3df16441046d5ba2b63d9a1c88232963ea522597520ba7d902b189';
const T0 = Date.UTC(2026, 11, 1, 12);

function series(
  name: string,
  values: number[],
  type: CheckReport['type'],
  message: (v: number) => string,
): CheckReport {
  const measurements: Measurement[] = values.map((value, i) => ({
    check: name,
    round: i + 1,
    at: T0 + i * 30_000,
    state: 'success',
    value,
    message: message(value),
  }));
  return {
    name,
    type,
    expectation: name,
    ...(type === 'http' ? { threshold: [500] } : {}),
    successes: values.length,
    failures: 0,
    errors: 0,
    inconclusive: 0,
    measurements,
  };
}

/** The staging soak of the rehearsal: 31 latencies of 2–61 ms under a 500 ms limit, and 3 pods throughout. */
export function soakResult(): GateResult {
  const latencies = Array.from({ length: 31 }, (_, i) => (i === 0 ? 61 : 2 + ((i * 7) % 9)));
  return {
    verdict: 'passed',
    reason: 'all 2 check(s) stayed within their limits for 31 measurements over 15m',
    rounds: 31,
    startedAt: T0,
    endedAt: T0 + 15 * 60_000,
    checks: [
      series('health', latencies, 'http', (v) => `HTTP 200 in ${v} ms`),
      series('pods', Array(31).fill(3), 'kubernetes', () => '3/3 available, 0 restarts'),
    ],
  };
}

/** The bad-canary scenario's abort: a canary at 60% errors with no metrics endpoint configured. */
export function abortedCanary(): CanaryResult {
  const probes = (failed: number, total: number): GateResult => ({
    verdict: failed > 2 ? 'failed' : 'passed',
    reason:
      failed > 2
        ? 'canary health failed 3 times (failure limit 2)'
        : 'all 1 check(s) stayed within their limits',
    rounds: total,
    startedAt: T0,
    endedAt: T0 + total * 30_000,
    checks: [
      {
        name: 'canary health',
        type: 'http',
        expectation: 'GET service shop-production/shop-canary:80/health → 2xx',
        successes: total - failed,
        failures: failed,
        errors: 0,
        inconclusive: 0,
        measurements: Array.from({ length: total }, (_, i) => ({
          check: 'canary health',
          round: i + 1,
          at: T0 + i * 30_000,
          state: i < failed ? ('failure' as const) : ('success' as const),
          value: 4,
          message: i < failed ? 'HTTP 500 (expected 2xx)' : 'HTTP 200 in 4 ms',
        })),
      },
    ],
  });
  return {
    ok: false,
    phase: 'aborted',
    mode: 'run',
    weight: 0,
    reason:
      'step 2 (50%) failed: canary health failed 3 times (failure limit 2); all traffic is back on stable',
    image: IMAGE,
    stableImage: STABLE,
    router: 'replicas',
    canary: 'shop-canary',
    steps: [
      {
        step: 1,
        weight: 10,
        effectiveWeight: 10,
        verdict: 'passed',
        reason: 'all 1 check(s) stayed within their limits',
        startedAt: '',
        endedAt: '',
        gate: probes(0, 5),
      },
      {
        step: 2,
        weight: 50,
        effectiveWeight: 50,
        verdict: 'failed',
        reason: 'canary health failed 3 times (failure limit 2)',
        startedAt: '',
        endedAt: '',
        gate: probes(3, 5),
      },
    ],
  };
}
