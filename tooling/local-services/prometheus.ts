import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real Prometheus server (Debian's `prometheus` package) on a free loopback port, scraping the
 * given targets every `scrapeIntervalMs`, in a temp dir removed on stop.
 */
export interface PrometheusServer {
  url: string;
  stop(): Promise<void>;
}

export function prometheusBinary(): string | undefined {
  for (const candidate of [
    process.env.PROMETHEUS_BIN,
    '/usr/bin/prometheus',
    '/usr/local/bin/prometheus',
  ].filter(Boolean) as string[]) {
    if (spawnSync(candidate, ['--version'], { stdio: 'ignore' }).status === 0) return candidate;
  }
  return undefined;
}

/** Missing binary: a failure in CI, a skip with instructions elsewhere. */
export function requirePrometheus(): string | undefined {
  const bin = prometheusBinary();
  if (bin) return bin;
  const message = 'Prometheus is not installed: apt-get install prometheus (or set PROMETHEUS_BIN)';
  if (process.env.CI === 'true') throw new Error(message);
  console.warn(`skipping the Prometheus tests: ${message}`);
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function startPrometheus(options: {
  targets: string[];
  scrapeIntervalMs?: number;
  binary?: string;
}): Promise<PrometheusServer> {
  const bin = options.binary ?? prometheusBinary();
  if (!bin) throw new Error('prometheus binary not found (apt-get install prometheus)');
  const dir = mkdtempSync(join(tmpdir(), 'pipeline-prometheus-'));
  const interval = `${Math.max(1, Math.round((options.scrapeIntervalMs ?? 1000) / 1000))}s`;
  const config = [
    'global:',
    `  scrape_interval: ${interval}`,
    `  evaluation_interval: ${interval}`,
    'scrape_configs:',
    '  - job_name: app',
    `    scrape_interval: ${interval}`,
    '    static_configs:',
    `      - targets: [${options.targets.map((t) => JSON.stringify(t)).join(', ')}]`,
  ].join('\n');
  writeFileSync(join(dir, 'prometheus.yml'), config);
  const port = await freePort();
  const child: ChildProcess = spawn(
    bin,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1h',
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    stderr = (stderr + c).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => {
        const t = setTimeout(() => {
          child.kill('SIGKILL');
          resolve(undefined);
        }, 5000);
        child.once('exit', () => {
          clearTimeout(t);
          resolve(undefined);
        });
      });
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`prometheus exited with ${child.exitCode}: ${stderr}`);
    }
    try {
      const r = await fetch(`${url}/-/ready`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus did not become ready in 30s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, stop };
}

/** Waits until `query` returns at least one series: Prometheus has scraped enough to compute it. */
export async function waitForSeries(url: string, query: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(query)}`);
    const body = (await r.json()) as { data?: { result?: unknown[] } };
    if ((body.data?.result?.length ?? 0) > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`Prometheus had no series for ${query} after ${timeoutMs} ms`);
}
