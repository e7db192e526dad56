// Performance check: a short burst of requests; fails when the p95 latency or the error share is too high.
const base = (process.env.STAGING_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
const requests = Number(process.env.PERF_REQUESTS ?? 40);
const maxP95Ms = Number(process.env.PERF_MAX_P95_MS ?? 800);
const latencies = [];
let errors = 0;
for (let i = 0; i < requests; i++) {
  const start = performance.now();
  const response = await fetch(`${base}/health`, { signal: AbortSignal.timeout(10_000) });
  await response.arrayBuffer();
  latencies.push(performance.now() - start);
  if (response.status >= 500) errors++;
}
latencies.sort((a, b) => a - b);
const p95 = latencies[Math.floor(latencies.length * 0.95) - 1] ?? 0;
console.log(`performance: ${requests} requests, p95 ${p95.toFixed(1)} ms, ${errors} errors`);
if (p95 > maxP95Ms || errors / requests > 0.01) {
  console.error(`performance: p95 must be at most ${maxP95Ms} ms and errors at most 1%`);
  process.exit(1);
}
