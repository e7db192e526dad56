// The shop service: plain node:http, no dependencies. /health for probes and the health gate,
// /metrics in the Prometheus text format for the gate's error-rate and latency checks.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { resolve } from 'node:path';

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const LEVELS = ['debug', 'info', 'warn', 'error'];

export function createMetrics() {
  const requests = new Map();
  const counts = new Array(BUCKETS.length).fill(0);
  let sum = 0;
  let total = 0;
  return {
    observe(code, seconds) {
      requests.set(code, (requests.get(code) ?? 0) + 1);
      BUCKETS.forEach((le, i) => {
        if (seconds <= le) counts[i]++;
      });
      sum += seconds;
      total++;
    },
    render() {
      const lines = [
        '# HELP http_requests_total HTTP requests served, by status code.',
        '# TYPE http_requests_total counter',
      ];
      for (const [code, n] of [...requests].sort(([a], [b]) => a - b)) {
        lines.push(`http_requests_total{code="${code}"} ${n}`);
      }
      lines.push(
        '# HELP http_request_duration_seconds Time to serve an HTTP request.',
        '# TYPE http_request_duration_seconds histogram',
      );
      BUCKETS.forEach((le, i) => {
        lines.push(`http_request_duration_seconds_bucket{le="${le}"} ${counts[i]}`);
      });
      lines.push(
        `http_request_duration_seconds_bucket{le="+Inf"} ${total}`,
        `http_request_duration_seconds_sum ${sum}`,
        `http_request_duration_seconds_count ${total}`,
      );
      return `${lines.join('\n')}\n`;
    },
  };
}

export function createLogger(level = 'info', write = (line) => process.stdout.write(line)) {
  const threshold = Math.max(LEVELS.indexOf(level), 0);
  const log =
    (lvl) =>
    (msg, fields = {}) => {
      if (LEVELS.indexOf(lvl) >= threshold) write(`${JSON.stringify({ level: lvl, msg, ...fields })}\n`);
    };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

function readVersion() {
  if (process.env.APP_VERSION) return process.env.APP_VERSION;
  try {
    return JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

const PRODUCTS = [
  { id: 1, name: 'Espresso cup', price: 9.5 },
  { id: 2, name: 'Pour-over kettle', price: 42 },
];

export function createApp({
  version = readVersion(),
  env = process.env,
  logger = createLogger(env.LOG_LEVEL),
} = {}) {
  const metrics = createMetrics();
  const newCheckout = env.FEATURE_NEW_CHECKOUT === 'true';

  const send = (res, code, type, body) => {
    res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  };
  const json = (res, code, value) =>
    send(res, code, 'application/json; charset=utf-8', JSON.stringify(value));

  const server = createServer((req, res) => {
    const started = process.hrtime.bigint();
    const path = new URL(req.url ?? '/', 'http://shop').pathname;
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      // Probes and scrapes are not traffic: keep them out of the error rate and latency.
      if (path !== '/metrics' && path !== '/health') metrics.observe(res.statusCode, seconds);
      logger.debug('request', { method: req.method, path, code: res.statusCode, seconds });
    });
    if (req.method !== 'GET' && req.method !== 'HEAD' && !(req.method === 'POST' && path === '/checkout')) {
      return json(res, 405, { error: 'method not allowed' });
    }
    switch (path) {
      case '/health':
        return json(res, 200, { status: 'healthy', version });
      case '/metrics':
        return send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', metrics.render());
      case '/products':
        return json(res, 200, PRODUCTS);
      case '/checkout':
        return json(res, 200, { checkout: newCheckout ? 'new' : 'classic' });
      case '/':
        return json(res, 200, { service: 'shop', version });
      default:
        return json(res, 404, { error: 'not found' });
    }
  });
  return { server, metrics, version };
}

// Run directly (node src/server.js, the container's command): listen and shut down cleanly on
// SIGTERM so Kubernetes can drain the pod.
if (process.argv[1] && import.meta.filename === resolve(process.argv[1])) {
  const logger = createLogger(process.env.LOG_LEVEL);
  const { server, version } = createApp({ logger });
  const port = Number(process.env.PORT ?? 8080);
  server.listen(port, process.env.HOST ?? '0.0.0.0', () => {
    logger.info('listening', {
      port: server.address().port,
      version,
      database: process.env.DATABASE_HOST,
      cache: process.env.CACHE_HOST,
    });
  });
  const stop = (signal) => {
    logger.info('shutting down', { signal });
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 10_000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
