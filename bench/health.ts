/**
 * Health engine speed: `node bench/health.ts`. Figures only; nothing here asserts.
 *
 * `runHealthGate` runs on a ManualClock (driven with `clock.drive`), so intervals cost no real
 * sleeping and what is left is the engine and its requests over loopback.
 * (a) Verdict latency: the time from the deciding probe's response arriving (the fetch the engine
 *     is given resolves with the failing answer) to `runHealthGate` resolving with `failed`,
 *     split at `onMeasurement`. With one check, and with 20 checks where only one fails (a round
 *     is judged when all its probes have answered, so the last answer of that round is shown too).
 * (b) Throughput: 20 HTTP checks per round, many rounds, reported as measurements per second,
 *     next to the same requests sent with bare `fetch` (20 at a time) as the floor, and with a
 *     clock whose sleeps return at once, which leaves out the ManualClock driver's own cost.
 * Both again against a real Prometheus scraping a test application when `prometheus` is
 * installed (/usr/bin/prometheus, or PROMETHEUS_BIN); otherwise that part says it was skipped.
 */
import type { Server } from 'node:http';
import { type Clock, ManualClock, silentLogger } from '../packages/core/index.ts';
import {
  type Check,
  DEFAULT_LIMITS,
  type GateResult,
  parseChecks,
  runHealthGate,
} from '../packages/health/index.ts';
import { closeServer, listenLoopback } from '../tooling/local-services/http.ts';
import { MetricsApp } from '../tooling/local-services/metrics-app.ts';
import { prometheusBinary, startPrometheus, waitForSeries } from '../tooling/local-services/prometheus.ts';

const LATENCY_TRIALS = 100;
const THROUGHPUT_CHECKS = 20;
const THROUGHPUT_ROUNDS = 250;
const PROM_TRIALS = 30;
const PROM_ROUNDS = 75;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
function p90(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.9 * s.length) - 1)]!;
}
const ms = (x: number) => x.toFixed(2).padStart(9);

/** A fetch that notes when each answer arrived, keyed by URL and request body. */
function timedFetch(arrivals: Map<string, number>): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    arrivals.set(`${String(input)} ${typeof init?.body === 'string' ? init.body : ''}`, performance.now());
    return response;
  };
}

interface Latency {
  response: number[];
  lastResponse: number[];
  measurement: number[];
}

/**
 * One failing gate per trial. `failingKey` names the deciding probe's arrival; the verdict must be
 * `failed` by that check or the trial is an error (a benchmark of the wrong thing).
 */
async function verdictLatency(
  trials: number,
  makeChecks: () => Check[],
  failing: { check: string; key: string },
  count: number,
): Promise<Latency> {
  const out: Latency = { response: [], lastResponse: [], measurement: [] };
  for (let t = 0; t < trials; t++) {
    const arrivals = new Map<string, number>();
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    let measuredAt = 0;
    let resolvedAt = 0;
    const gate = runHealthGate({
      checks: makeChecks(),
      initialDelayMs: 0,
      intervalMs: 10_000,
      count,
      clock,
      logger: silentLogger,
      fetch: timedFetch(arrivals),
      onMeasurement: (m) => {
        if (m.check === failing.check && m.state === 'failure') measuredAt = performance.now();
      },
    }).then((r: GateResult) => {
      resolvedAt = performance.now();
      return r;
    });
    const result = await clock.drive(gate);
    if (result.verdict !== 'failed' || result.decidedBy !== failing.check)
      throw new Error(`trial ${t}: ${result.verdict} by ${result.decidedBy}: ${result.reason}`);
    const decidingAt = arrivals.get(failing.key)!;
    out.response.push(resolvedAt - decidingAt);
    out.lastResponse.push(resolvedAt - Math.max(...arrivals.values()));
    out.measurement.push(resolvedAt - measuredAt);
  }
  return out;
}

function printLatency(label: string, l: Latency): void {
  console.log(
    `${label.padEnd(44)}${ms(median(l.response))}${ms(p90(l.response))}${ms(median(l.lastResponse))}${ms(median(l.measurement))}`,
  );
}
const latencyHeader = () =>
  console.log(
    `${'verdict latency (ms)'.padEnd(44)}${'median'.padStart(9)}${'p90'.padStart(9)}${'last→v'.padStart(9)}${'onM→v'.padStart(9)}`,
  );

/**
 * A clock whose sleeps return at once, for telling the engine's own cost apart from the
 * ManualClock driver's (which looks for sleepers every millisecond and flushes between steps).
 */
function instantClock(): Clock {
  let now = Date.UTC(2026, 0, 1);
  return {
    now: () => now,
    sleep: (ms) => {
      now += ms;
      return Promise.resolve();
    },
  };
}

async function throughput(
  checks: Check[],
  rounds: number,
  clockKind: 'manual' | 'instant' = 'manual',
): Promise<{ perSecond: number; ms: number }> {
  const manual = new ManualClock(Date.UTC(2026, 0, 1));
  const clock = clockKind === 'manual' ? manual : instantClock();
  const start = performance.now();
  const gate = runHealthGate({
    checks,
    initialDelayMs: 0,
    intervalMs: 1,
    count: rounds,
    clock,
    logger: silentLogger,
  });
  const result = clockKind === 'manual' ? await manual.drive(gate) : await gate;
  const elapsed = performance.now() - start;
  if (result.verdict !== 'passed') throw new Error(`throughput gate ${result.verdict}: ${result.reason}`);
  return { perSecond: (checks.length * rounds * 1000) / elapsed, ms: elapsed };
}

async function bareFetch(urls: string[], rounds: number, init?: RequestInit): Promise<number> {
  const start = performance.now();
  for (let r = 0; r < rounds; r++) await Promise.all(urls.map(async (u) => (await fetch(u, init)).text()));
  return (urls.length * rounds * 1000) / (performance.now() - start);
}

let server: Server | undefined;
let app: MetricsApp | undefined;
let prometheus: { url: string; stop(): Promise<void> } | undefined;
try {
  console.log(`health engine benchmark (node ${process.version}, ManualClock)\n`);
  // A service whose /fail/<n> paths answer 503 from a given call on; every other path is healthy.
  let failFrom = Number.POSITIVE_INFINITY;
  let calls = 0;
  ({ server } = await listenLoopback((req, res) => {
    const failing = req.url?.startsWith('/fail') && ++calls >= failFrom;
    const body = JSON.stringify({ status: failing ? 'degraded' : 'healthy' });
    res.writeHead(failing ? 503 : 200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  }));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const defaults = { ...DEFAULT_LIMITS, prometheusAuth: {}, timeoutMs: 5000 };
  const httpChecks = (n: number, failingIndex = -1) =>
    parseChecks(
      Array.from({ length: n }, (_, i) => ({
        name: `c${i}`,
        url: i === failingIndex ? `${base}/fail` : `${base}/health?i=${i}`,
        json: '.status == "healthy"',
      })),
      defaults,
    );

  // (a) HTTP: healthy for two rounds, the third answer fails.
  latencyHeader();
  const one = await verdictLatency(
    LATENCY_TRIALS,
    () => {
      calls = 0;
      failFrom = 3;
      return httpChecks(1, 0);
    },
    { check: 'c0', key: `${base}/fail ` },
    5,
  );
  printLatency('1 HTTP check, fails in round 3', one);
  const twenty = await verdictLatency(
    LATENCY_TRIALS,
    () => {
      calls = 0;
      failFrom = 3;
      return httpChecks(20, 7);
    },
    { check: 'c7', key: `${base}/fail ` },
    5,
  );
  printLatency('20 HTTP checks, one fails in round 3', twenty);
  failFrom = Number.POSITIVE_INFINITY;

  // (b) HTTP throughput.
  const checks = httpChecks(THROUGHPUT_CHECKS);
  await throughput(checks, 20); // warm-up: connections, JIT
  const gate = await throughput(checks, THROUGHPUT_ROUNDS);
  const instant = await throughput(checks, THROUGHPUT_ROUNDS, 'instant');
  const floor = await bareFetch(
    Array.from({ length: THROUGHPUT_CHECKS }, (_, i) => `${base}/health?i=${i}`),
    THROUGHPUT_ROUNDS,
  );
  console.log(
    `\n${'throughput'.padEnd(44)}${'meas/s'.padStart(9)}${'×fetch'.padStart(9)}  (${THROUGHPUT_CHECKS} checks × ${THROUGHPUT_ROUNDS} rounds)`,
  );
  console.log(
    `${'runHealthGate, HTTP'.padEnd(44)}${gate.perSecond.toFixed(0).padStart(9)}${(gate.perSecond / floor).toFixed(2).padStart(9)}`,
  );
  console.log(
    `${'runHealthGate, HTTP, instant clock'.padEnd(44)}${instant.perSecond.toFixed(0).padStart(9)}${(instant.perSecond / floor).toFixed(2).padStart(9)}`,
  );
  console.log(
    `${'bare fetch, same requests (floor)'.padEnd(44)}${floor.toFixed(0).padStart(9)}${'1.00'.padStart(9)}`,
  );

  // Prometheus.
  const binary = prometheusBinary();
  if (!binary) {
    console.log(
      '\nPrometheus: skipped (no prometheus binary; apt-get install prometheus or set PROMETHEUS_BIN)',
    );
  } else {
    app = await MetricsApp.start({ requestsPerSecond: 100 });
    prometheus = await startPrometheus({ targets: [app.target], scrapeIntervalMs: 1000, binary });
    await waitForSeries(prometheus.url, 'sum(rate(http_requests_total[3s]))', 30_000);
    const promChecks = (n: number, failingIndex = -1) =>
      parseChecks(
        Array.from({ length: n }, (_, i) => ({
          name: `p${i}`,
          type: 'prometheus',
          // A distinct query per check (the "+ i") so that each answer can be told apart.
          query: `sum(rate(http_requests_total{job="app"}[3s])) + ${i}`,
          condition: i === failingIndex ? '< 0' : '>= 0',
        })),
        { ...defaults, prometheusUrl: prometheus!.url },
      );
    const keyOf = (i: number) =>
      `${prometheus!.url}/api/v1/query ${new URLSearchParams({ query: `sum(rate(http_requests_total{job="app"}[3s])) + ${i}` })}`;
    console.log(`\nPrometheus ${prometheus.url} scraping the test application every 1 s`);
    latencyHeader();
    printLatency(
      '1 Prometheus check, fails in round 1',
      await verdictLatency(PROM_TRIALS, () => promChecks(1, 0), { check: 'p0', key: keyOf(0) }, 3),
    );
    printLatency(
      '20 Prometheus checks, one fails in round 1',
      await verdictLatency(PROM_TRIALS, () => promChecks(20, 7), { check: 'p7', key: keyOf(7) }, 3),
    );
    const pc = promChecks(THROUGHPUT_CHECKS);
    await throughput(pc, 5);
    const pg = await throughput(pc, PROM_ROUNDS);
    const pi = await throughput(pc, PROM_ROUNDS, 'instant');
    const pf = await bareFetch(
      Array.from({ length: THROUGHPUT_CHECKS }, () => `${prometheus!.url}/api/v1/query`),
      PROM_ROUNDS,
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ query: 'sum(rate(http_requests_total{job="app"}[3s]))' }).toString(),
      },
    );
    console.log(
      `${'throughput'.padEnd(44)}${'meas/s'.padStart(9)}${'×fetch'.padStart(9)}  (${THROUGHPUT_CHECKS} checks × ${PROM_ROUNDS} rounds)`,
    );
    console.log(
      `${'runHealthGate, Prometheus'.padEnd(44)}${pg.perSecond.toFixed(0).padStart(9)}${(pg.perSecond / pf).toFixed(2).padStart(9)}`,
    );
    console.log(
      `${'runHealthGate, Prometheus, instant clock'.padEnd(44)}${pi.perSecond.toFixed(0).padStart(9)}${(pi.perSecond / pf).toFixed(2).padStart(9)}`,
    );
    console.log(
      `${'bare fetch of the same query (floor)'.padEnd(44)}${pf.toFixed(0).padStart(9)}${'1.00'.padStart(9)}`,
    );
  }
  console.log(
    '\nmedian/p90: deciding response → verdict; last→v: last response of the round → verdict; onM→v: onMeasurement of the failure → verdict',
  );
} finally {
  await prometheus?.stop();
  await app?.close();
  if (server) await closeServer(server);
}
