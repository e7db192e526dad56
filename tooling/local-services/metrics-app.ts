import type { Server } from 'node:http';
import { Counter, Histogram, Registry } from 'prom-client';
import { closeServer, listenLoopback } from './http.ts';

/**
 * A test application for the health gate: it serves /health and /metrics (prom-client), and
 * generates its own traffic at a steady rate with an error rate and latency the test can change
 * mid-window, so Prometheus sees what a real service under load would show.
 */
export class MetricsApp {
  readonly url: string;
  errorRate = 0;
  latencySeconds = 0.05;
  healthy = true;
  private readonly server: Server;
  private readonly requests: Counter;
  private readonly duration: Histogram;
  private timer: NodeJS.Timeout | undefined;

  private constructor(server: Server, url: string, requests: Counter, duration: Histogram) {
    this.server = server;
    this.url = url;
    this.requests = requests;
    this.duration = duration;
  }

  static async start(options: { requestsPerSecond?: number } = {}): Promise<MetricsApp> {
    const registry = new Registry();
    const requests = new Counter({
      name: 'http_requests_total',
      help: 'Requests served',
      labelNames: ['code'],
      registers: [registry],
    });
    const duration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Request latency',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    let app: MetricsApp | undefined;
    const { server, url } = await listenLoopback((req, res) => {
      if (req.url === '/metrics') {
        registry.metrics().then((text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        });
        return;
      }
      if (req.url === '/health') {
        const ok = app!.healthy;
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: ok ? 'healthy' : 'degraded', version: 'v2.3.1' }));
        return;
      }
      res.writeHead(404);
      res.end();
    });
    app = new MetricsApp(server, url, requests, duration);
    const rps = options.requestsPerSecond ?? 50;
    // Traffic in batches every 100 ms: the counters move between scrapes like a busy service.
    app.timer = setInterval(() => app!.serveBatch(Math.max(1, Math.round(rps / 10))), 100);
    app.timer.unref();
    return app;
  }

  /** host:port, as Prometheus' static_configs wants it. */
  get target(): string {
    return this.url.replace(/^http:\/\//, '');
  }

  private serveBatch(n: number): void {
    for (let i = 0; i < n; i++) {
      const failed = Math.random() < this.errorRate;
      this.requests.inc({ code: failed ? '500' : '200' });
      this.duration.observe(this.latencySeconds * (0.8 + Math.random() * 0.4));
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await closeServer(this.server);
  }
}
