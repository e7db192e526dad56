import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { parse } from 'yaml';
import { ManualClock, MemoryLogger } from '../../packages/core/index.ts';
import {
  DEFAULT_LIMITS,
  evidenceJson,
  type GateResult,
  parseChecks,
  renderGateSummary,
  runHealthGate,
  verdictLine,
} from '../../packages/health/index.ts';
import { closeServer, listenLoopback } from '../../tooling/local-services/http.ts';

/** A service whose health the test changes as time goes by. */
let server: Server;
let base: string;
let status = 200;
let body: unknown = { status: 'healthy' };
let calls = 0;

beforeAll(async () => {
  ({ server, url: base } = await listenLoopback((_req, res) => {
    calls++;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }));
});
afterAll(() => closeServer(server));

function checks(yaml: string) {
  return parseChecks(parse(yaml.replaceAll('BASE', base)), {
    ...DEFAULT_LIMITS,
    prometheusAuth: {},
    timeoutMs: 2000,
  });
}

function reset() {
  status = 200;
  body = { status: 'healthy' };
  calls = 0;
}

describe('the health gate over time (time is injected)', () => {
  test('a 15-minute soak passes only after the whole window was green, without sleeping for real', async () => {
    reset();
    const clock = new ManualClock(Date.UTC(2026, 10, 26));
    const result = await clock.drive(
      runHealthGate({
        checks: checks('- { name: api, url: BASE/health, json: .status == "healthy" }'),
        initialDelayMs: 60_000,
        intervalMs: 60_000,
        durationMs: 15 * 60_000,
        clock,
        logger: new MemoryLogger(),
      }),
    );
    expect(result.verdict).toBe('passed');
    expect(result.rounds).toBe(16);
    expect(calls).toBe(16);
    const times = result.checks[0]!.measurements.map((m) => m.at - result.startedAt);
    expect(times[0]).toBe(60_000);
    expect(times.at(-1)).toBe(16 * 60_000);
    expect(result.reason).toBe('all 1 check(s) stayed within their limits for 16 measurements over 15m');
  });

  test('fails at the first measurement after the service breaks, without waiting for the window to end', async () => {
    reset();
    const clock = new ManualClock(0);
    const seen: number[] = [];
    const result = await clock.drive(
      runHealthGate({
        checks: checks('- { name: api, url: BASE/health, json: .status == "healthy" }'),
        initialDelayMs: 0,
        intervalMs: 30_000,
        durationMs: 15 * 60_000,
        clock,
        logger: new MemoryLogger(),
        onMeasurement: (m) => {
          seen.push(m.round);
          if (m.round === 4) body = { status: 'degraded' };
        },
      }),
    );
    expect(result.verdict).toBe('failed');
    expect(result.rounds).toBe(5);
    expect(result.decidedBy).toBe('api');
    expect(result.reason).toBe(
      'api failed 1 time(s), more than its failure limit of 0: .status is "degraded", expected "healthy"',
    );
    expect(clock.now()).toBe(4 * 30_000);
    expect(seen).toEqual([1, 2, 3, 4, 5]);
  });

  test('failure-limit tolerates that many failed measurements', async () => {
    reset();
    const clock = new ManualClock(0);
    let n = 0;
    const result = await clock.drive(
      runHealthGate({
        checks: checks('- { name: api, url: BASE/health, failure-limit: 2 }'),
        initialDelayMs: 0,
        intervalMs: 1000,
        count: 6,
        clock,
        logger: new MemoryLogger(),
        onMeasurement: () => {
          n++;
          status = n === 2 || n === 4 ? 503 : 200;
        },
      }),
    );
    expect(result.verdict).toBe('passed');
    expect(result.checks[0]).toMatchObject({ successes: 4, failures: 2, errors: 0 });
  });

  test('an unreachable target counts as errors, not failures, and fails after the consecutive error limit', async () => {
    const clock = new ManualClock(0);
    const unreachable = await listenLoopback(() => {});
    const url = unreachable.url;
    await closeServer(unreachable.server);
    const result = await clock.drive(
      runHealthGate({
        checks: parseChecks([{ name: 'gone', url: `${url}/health`, 'consecutive-error-limit': 2 }], {
          ...DEFAULT_LIMITS,
          prometheusAuth: {},
          timeoutMs: 2000,
        }),
        initialDelayMs: 0,
        intervalMs: 1000,
        count: 10,
        clock,
        logger: new MemoryLogger(),
      }),
    );
    expect(result.verdict).toBe('failed');
    expect(result.checks[0]).toMatchObject({ errors: 3, failures: 0 });
    expect(result.reason).toMatch(
      /^gone could not be measured 3 times in a row, more than its consecutive error limit of 2: request failed: /,
    );
  });

  test('a slow answer fails max-latency; a wrong status and a body pattern are reported with what was seen', async () => {
    reset();
    status = 500;
    body = { status: 'healthy' };
    const clock = new ManualClock(0);
    const result = await clock.drive(
      runHealthGate({
        checks: checks(
          '- { name: status, url: BASE/health, failure-limit: 5 }\n- { name: pattern, url: BASE/health, body-pattern: "ok", failure-limit: 5 }\n- { name: slow, url: BASE/health, max-latency: 0ms, expect-status: [500], failure-limit: 5 }',
        ),
        initialDelayMs: 0,
        intervalMs: 1000,
        count: 1,
        clock,
        logger: new MemoryLogger(),
      }),
    );
    const byName = Object.fromEntries(result.checks.map((c) => [c.name, c.measurements[0]!]));
    expect(byName.status!.message).toBe('HTTP 500 (expected 2xx): {"status":"healthy"}');
    expect(byName.pattern!.message).toBe('HTTP 500 (expected 2xx): {"status":"healthy"}');
    expect(byName.slow!.state).toBe('failure');
    expect(byName.slow!.message).toMatch(/^answered in \d+ ms, more than 0 ms$/);
  });

  test('the evidence has every measurement, and the summary a table and a chart per numeric check', async () => {
    reset();
    const clock = new ManualClock(Date.UTC(2026, 10, 26, 12));
    const result: GateResult = await clock.drive(
      runHealthGate({
        checks: checks('- { name: latency, url: BASE/health, max-latency: 5s }'),
        initialDelayMs: 0,
        intervalMs: 10_000,
        count: 3,
        clock,
        logger: new MemoryLogger(),
      }),
    );
    const evidence = JSON.parse(evidenceJson(result));
    expect(evidence.verdict).toBe('passed');
    expect(evidence.checks[0].measurements).toHaveLength(3);
    expect(evidence.checks[0].measurements[1]).toMatchObject({
      round: 2,
      at: '2026-11-26T12:00:10.000Z',
      state: 'success',
    });
    const summary = renderGateSummary(result);
    expect(summary).toContain('### ✅ Health gate: passed');
    // A 5 s threshold over millisecond answers would flatten the chart: it is named, not drawn.
    expect(summary).toMatch(
      /3 measurement\\\(s\\\), \d+(–\d+)? ms( throughout)? · threshold 5000 ms, not drawn: far from every value/,
    );
    expect(summary).not.toContain('line [5000');
  });

  test('the verdict line fits a deployment status (140 characters), verdict first, the deciding check marked', async () => {
    reset();
    status = 500;
    const names = Array.from({ length: 12 }, (_, i) => `check number ${i + 1} of the checkout service`);
    const clock = new ManualClock(Date.UTC(2026, 10, 26, 12));
    const result: GateResult = await clock.drive(
      runHealthGate({
        checks: checks(names.map((n) => `- { name: ${n}, url: BASE/health }`).join('\n')),
        initialDelayMs: 0,
        intervalMs: 10_000,
        count: 2,
        clock,
        logger: new MemoryLogger(),
      }),
    );
    const line = verdictLine(result);
    expect(line).toHaveLength(140);
    expect(line).toMatch(
      /^health gate failed: 1 round over 0ms; checks: check number 1 of the checkout service \(failed\), check number 2 .*…$/,
    );
  });
});

describe('Prometheus values', () => {
  test('+Inf (a p99 above the top bucket) is the worst value, a failure, never "no data"', async () => {
    const { probePrometheus } = await import('../../packages/health/probes.ts');
    const [check] = parseChecks(
      [
        {
          name: 'p99',
          type: 'prometheus',
          query: 'histogram_quantile(0.99, x)',
          condition: '< 0.5',
          'prometheus-url': 'http://prometheus.invalid',
        },
      ],
      {
        ...DEFAULT_LIMITS,
        prometheusAuth: {},
        timeoutMs: 1000,
      },
    );
    const answer = (value: string) =>
      (async () =>
        new Response(
          JSON.stringify({
            status: 'success',
            data: { resultType: 'vector', result: [{ metric: {}, value: [1, value] }] },
          }),
        )) as unknown as typeof fetch;
    const ctx = (value: string) => ({ fetch: answer(value), memory: new Map() });
    await expect(probePrometheus(check as never, ctx('+Inf'))).resolves.toMatchObject({
      state: 'failure',
      value: Number.POSITIVE_INFINITY,
    });
    await expect(probePrometheus(check as never, ctx('NaN'))).resolves.toMatchObject({ state: 'no-data' });
    await expect(probePrometheus(check as never, ctx('0.2'))).resolves.toMatchObject({
      state: 'success',
      value: 0.2,
    });
  });
});
