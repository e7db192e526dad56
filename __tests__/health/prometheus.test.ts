import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { InputError, MemoryLogger } from '../../packages/core/index.ts';
import { DEFAULT_LIMITS, parseChecks, runHealthGate } from '../../packages/health/index.ts';
import { MetricsApp } from '../../tooling/local-services/metrics-app.ts';
import {
  type PrometheusServer,
  requirePrometheus,
  startPrometheus,
  waitForSeries,
} from '../../tooling/local-services/prometheus.ts';

const binary = requirePrometheus();
const describeWithPrometheus = binary ? describe : describe.skip;

let app: MetricsApp;
let prometheus: PrometheusServer;

const errorRate = {
  name: 'errors',
  type: 'prometheus',
  metric: 'request-error-rate',
  selector: 'job="app"',
  window: '3s',
  condition: '< 0.05',
};
const p99 = {
  name: 'p99',
  type: 'prometheus',
  metric: 'latency-p99',
  selector: 'job="app"',
  window: '3s',
  condition: '< 0.5',
};

function checks(list: Record<string, unknown>[]) {
  return parseChecks(list, {
    ...DEFAULT_LIMITS,
    prometheusUrl: prometheus.url,
    prometheusAuth: {},
    timeoutMs: 5000,
  });
}

const waitForData = () => waitForSeries(prometheus.url, 'sum(rate(http_requests_total[3s]))', 20_000);

describeWithPrometheus('health gate against a real Prometheus scraping a test application', () => {
  beforeAll(async () => {
    app = await MetricsApp.start({ requestsPerSecond: 100 });
    prometheus = await startPrometheus({
      targets: [app.target],
      scrapeIntervalMs: 1000,
      ...(binary ? { binary } : {}),
    });
  }, 60_000);
  afterAll(async () => {
    await prometheus?.stop();
    await app?.close();
  });

  test('before the first scrape there is no data, which is inconclusive and never a pass', async () => {
    const result = await runHealthGate({
      checks: checks([{ ...errorRate, name: 'early' }]),
      initialDelayMs: 0,
      intervalMs: 200,
      count: 3,
      logger: new MemoryLogger(),
    });
    expect(result.verdict).toBe('inconclusive');
    expect(result.checks[0]!.measurements[0]).toMatchObject({
      state: 'no-data',
      message: 'the query returned no series',
    });
  });

  test('no-data: fail turns an empty result into a failure; no-data: pass into a success', async () => {
    const absent = {
      name: 'absent',
      type: 'prometheus',
      query: 'sum(rate(nothing_here_total[1m]))',
      condition: '< 1',
    };
    const failing = await runHealthGate({
      checks: checks([{ ...absent, 'no-data': 'fail' }]),
      initialDelayMs: 0,
      intervalMs: 100,
      count: 2,
      logger: new MemoryLogger(),
    });
    expect(failing.verdict).toBe('failed');
    const passing = await runHealthGate({
      checks: checks([{ ...absent, 'no-data': 'pass' }]),
      initialDelayMs: 0,
      intervalMs: 100,
      count: 2,
      logger: new MemoryLogger(),
    });
    expect(passing.verdict).toBe('passed');
  });

  test('passes while healthy, and fails within one interval once errors cross the threshold mid-window', async () => {
    await waitForData();
    app.errorRate = 0;
    let flippedAtRound: number | undefined;
    const result = await runHealthGate({
      checks: checks([errorRate, p99]),
      initialDelayMs: 0,
      intervalMs: 1000,
      count: 30,
      logger: new MemoryLogger(),
      onMeasurement: (m) => {
        if (m.round === 3 && flippedAtRound === undefined) {
          flippedAtRound = m.round;
          app.errorRate = 0.5;
        }
      },
    });
    expect([result.verdict, result.reason]).toEqual(['failed', expect.stringMatching(/^errors failed/)]);
    expect(result.decidedBy).toBe('errors');
    const errors = result.checks.find((c) => c.name === 'errors')!;
    expect(errors.measurements.slice(0, 3).every((m) => m.state === 'success')).toBe(true);
    // Prometheus needs one scrape (1 s) to see the change; the gate decides at the measurement after that.
    expect(result.rounds - flippedAtRound!).toBeLessThanOrEqual(4);
    expect(errors.measurements.at(-1)!.message).toMatch(/is not < 0\.05/);
    const latency = result.checks.find((c) => c.name === 'p99')!;
    expect(latency.measurements.every((m) => m.state === 'success')).toBe(true);
    app.errorRate = 0;
  }, 60_000);

  test('a PromQL query Prometheus rejects fails before probing starts, naming the check', async () => {
    const bad = checks([
      { name: 'typo', type: 'prometheus', query: 'sum(rate(http_requests_total[1m]', condition: '< 1' },
    ]);
    const run = runHealthGate({
      checks: bad,
      initialDelayMs: 60_000,
      intervalMs: 1000,
      count: 1,
      logger: new MemoryLogger(),
    });
    await expect(run).rejects.toBeInstanceOf(InputError);
    await expect(run).rejects.toThrow(
      /^Input 'checks\[0\] \(typo\)\.query' was rejected by Prometheus: .*parse error/,
    );
  });
});
