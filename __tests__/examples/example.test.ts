import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { parseAllDocuments } from 'yaml';
import { MemoryLogger } from '../../packages/core/index.ts';
import { parseEnvironmentsConfig } from '../../packages/github/environments.ts';
import { loadChecks, loadMigrations } from '../../packages/migrate/files.ts';
import { runMigrations } from '../../packages/migrate/index.ts';
import {
  type PostgresServer,
  postgresAvailable,
  startPostgres,
} from '../../tooling/local-services/postgres.ts';
import { REPO_ROOT } from '../../tooling/runners/action-runner.ts';

const SHOP = join(REPO_ROOT, 'examples', 'shop');

/** A tool the tests need: a failure in CI, a skip with the reason elsewhere. */
function toolAvailable(command: string, args: string[], hint: string): boolean {
  if (spawnSync(command, args, { stdio: 'ignore' }).status === 0) return true;
  const message = `${command} is not installed: ${hint}`;
  if (process.env.CI === 'true') throw new Error(`${message}; CI=true, so these tests cannot be skipped`);
  console.warn(`Skipping the tests that need ${command}: ${message}`);
  return false;
}

interface K8sObject {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  spec?: Record<string, unknown>;
}

interface Container {
  name: string;
  image: string;
  envFrom?: Array<{ configMapRef?: { name: string } }>;
  resources: { requests: { cpu: string; memory: string }; limits: { cpu: string; memory: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  livenessProbe: { httpGet: { path: string; port: string } };
}

function render(overlay: string): K8sObject[] {
  const result = spawnSync('kubectl', ['kustomize', join(SHOP, 'k8s', overlay)], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`kubectl kustomize k8s/${overlay} failed: ${result.stderr}`);
  return parseAllDocuments(result.stdout).map((d) => d.toJSON() as K8sObject);
}

function cpuMillis(q: string): number {
  return q.endsWith('m') ? Number(q.slice(0, -1)) : Number(q) * 1000;
}

function memoryMi(q: string): number {
  const m = /^(\d+)(Mi|Gi)$/.exec(q);
  if (!m) throw new Error(`unexpected memory quantity ${q}`);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
}

const MATRIX = {
  dev: { replicas: 1, logLevel: 'debug', newCheckout: 'true', tag: 'dev' },
  staging: { replicas: 3, logLevel: 'info', newCheckout: 'true', tag: 'staging' },
  production: { replicas: 10, logLevel: 'warn', newCheckout: 'false', tag: '1.4.0' },
} as const;
type Env = keyof typeof MATRIX;
const ENVS = Object.keys(MATRIX) as Env[];

const kubectl = toolAvailable('kubectl', ['version', '--client'], 'install kubectl (it bundles kustomize)');

(kubectl ? describe : describe.skip)('examples/shop/k8s overlays rendered by kubectl kustomize', () => {
  const rendered = {} as Record<
    Env,
    { objects: K8sObject[]; container: Container; config: Record<string, string> }
  >;

  beforeAll(() => {
    for (const env of ENVS) {
      const objects = render(env);
      const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'shop')!;
      const template = (deployment.spec as { template: { spec: { containers: Container[] } } }).template;
      const container = template.spec.containers[0]!;
      const configName = container.envFrom?.[0]?.configMapRef?.name;
      const config =
        objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === configName)?.data ?? {};
      rendered[env] = { objects, container, config };
    }
  });

  test.each(ENVS)('%s: namespace, replicas, image, log level and feature flag', (env) => {
    const { objects, container, config } = rendered[env];
    const want = MATRIX[env];
    expect(objects.map((o) => `${o.kind}/${o.metadata.name.replace(/-[a-z0-9]{10}$/, '')}`).sort()).toEqual([
      'ConfigMap/shop-settings',
      'Deployment/shop',
      'Service/shop',
    ]);
    for (const o of objects) {
      expect(o.metadata.namespace).toBe(`shop-${env}`);
      expect(o.metadata.labels?.['app.kubernetes.io/environment']).toBe(env);
    }
    const deployment = objects.find((o) => o.kind === 'Deployment')!;
    expect(deployment.spec?.replicas).toBe(want.replicas);
    expect(container.image).toBe(`ghcr.io/acme/shop:${want.tag}`);
    expect(config.LOG_LEVEL).toBe(want.logLevel);
    expect(config.FEATURE_NEW_CHECKOUT).toBe(want.newCheckout);
    expect(config.PORT).toBe('8080');
  });

  test.each(ENVS)('%s: readiness and liveness probes on /health; the Service selects the pods', (env) => {
    const { objects, container } = rendered[env];
    expect(container.readinessProbe.httpGet).toEqual({ path: '/health', port: 'http' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/health', port: 'http' });
    const service = objects.find((o) => o.kind === 'Service')!;
    const deployment = objects.find((o) => o.kind === 'Deployment')!;
    const podLabels = (deployment.spec as { template: { metadata: { labels: Record<string, string> } } })
      .template.metadata.labels;
    for (const [k, v] of Object.entries((service.spec as { selector: Record<string, string> }).selector)) {
      expect(podLabels[k]).toBe(v);
    }
  });

  test('each environment has its own database and cache', () => {
    const databases = ENVS.map((e) => rendered[e].config.DATABASE_HOST);
    const caches = ENVS.map((e) => rendered[e].config.CACHE_HOST);
    expect(new Set(databases).size).toBe(3);
    expect(new Set(caches).size).toBe(3);
    for (const env of ENVS) {
      expect(rendered[env].config.DATABASE_HOST).toContain(env);
      expect(rendered[env].config.CACHE_HOST).toContain(env);
      expect(rendered[env].config.DATABASE_HOST).not.toBe('localhost');
    }
  });

  test('resources grow from dev to staging to production', () => {
    const r = ENVS.map((e) => rendered[e].container.resources);
    for (const [a, b] of [
      [r[0]!, r[1]!],
      [r[1]!, r[2]!],
    ] as const) {
      expect(cpuMillis(b.requests.cpu)).toBeGreaterThan(cpuMillis(a.requests.cpu));
      expect(cpuMillis(b.limits.cpu)).toBeGreaterThan(cpuMillis(a.limits.cpu));
      expect(memoryMi(b.requests.memory)).toBeGreaterThan(memoryMi(a.requests.memory));
      expect(memoryMi(b.limits.memory)).toBeGreaterThan(memoryMi(a.limits.memory));
    }
    for (const res of r) {
      expect(cpuMillis(res.limits.cpu)).toBeGreaterThanOrEqual(cpuMillis(res.requests.cpu));
      expect(memoryMi(res.limits.memory)).toBeGreaterThanOrEqual(memoryMi(res.requests.memory));
    }
  });
});

describe('examples/shop service', () => {
  let child: ChildProcess;
  let url: string;
  let logLines: string[];

  beforeAll(async () => {
    child = spawn(process.execPath, [join(SHOP, 'src', 'server.js')], {
      env: {
        PATH: process.env.PATH,
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        APP_VERSION: '1.4.0-test',
        DATABASE_HOST: 'db.test',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    logLines = [];
    const lines = createInterface({ input: child.stdout! });
    url = await new Promise<string>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`the service exited with ${code} before listening`)));
      lines.on('line', (line) => {
        logLines.push(line);
        const entry = JSON.parse(line) as { msg: string; port?: number };
        if (entry.msg === 'listening') resolve(`http://127.0.0.1:${entry.port}`);
      });
    });
  });

  afterAll(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  test('/health answers healthy with the version', async () => {
    const response = await fetch(`${url}/health`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('application/json');
    expect(await response.json()).toEqual({ status: 'healthy', version: '1.4.0-test' });
  });

  test('/metrics counts requests by code and records a latency histogram', async () => {
    expect((await fetch(`${url}/products`)).status).toBe(200);
    expect((await fetch(`${url}/products`)).status).toBe(200);
    expect((await fetch(`${url}/no-such-page`)).status).toBe(404);
    const response = await fetch(`${url}/metrics`);
    expect(response.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    const text = await response.text();

    expect(text).toContain('# TYPE http_requests_total counter');
    expect(text).toContain('http_requests_total{code="200"} 2\n');
    expect(text).toContain('http_requests_total{code="404"} 1\n');
    expect(text).toContain('# TYPE http_request_duration_seconds histogram');
    // Probes and scrapes are not counted as traffic.
    expect(text).toContain('http_request_duration_seconds_count 3\n');
    const buckets = [...text.matchAll(/^http_request_duration_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)].map(
      (m) => [m[1]!, Number(m[2])] as const,
    );
    expect(buckets.at(-1)).toEqual(['+Inf', 3]);
    for (let i = 1; i < buckets.length; i++)
      expect(buckets[i]![1]).toBeGreaterThanOrEqual(buckets[i - 1]![1]);

    if (toolAvailable('promtool', ['--version'], 'it comes with Prometheus: apt-get install prometheus')) {
      const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect(`${check.stdout}${check.stderr}`.trim()).toBe('');
      expect(check.status).toBe(0);
    }
  });

  test('logs as JSON at the configured level, and stops cleanly on SIGTERM', async () => {
    const listening = JSON.parse(logLines[0]!) as Record<string, unknown>;
    expect(listening).toMatchObject({
      level: 'info',
      msg: 'listening',
      version: '1.4.0-test',
      database: 'db.test',
    });
    // LOG_LEVEL=info: no per-request debug lines.
    expect(logLines.some((l) => l.includes('"level":"debug"'))).toBe(false);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});

describe('examples/shop files', () => {
  test('the Dockerfile is multi-stage, runs as a non-root user and has a health check', () => {
    const dockerfile = readFileSync(join(SHOP, 'Dockerfile'), 'utf8');
    expect(dockerfile.match(/^FROM /gm)).toHaveLength(2);
    expect(dockerfile).toMatch(/^COPY --from=build /m);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\n.*\/health/m);
  });

  test('the environments file: dev from feature/*, staging from main, production approved from main', () => {
    const config = parseEnvironmentsConfig(readFileSync(join(SHOP, '.github', 'environments.yml'), 'utf8'));
    const byName = Object.fromEntries(config.environments.map((e) => [e.name, e]));
    expect(byName.dev?.branchPolicy).toEqual({
      kind: 'custom',
      patterns: [{ name: 'feature/*', type: 'branch' }],
    });
    expect(byName.staging?.branchPolicy).toEqual({
      kind: 'custom',
      patterns: [{ name: 'main', type: 'branch' }],
    });
    expect(byName.staging?.reviewers).toEqual([]);
    const production = byName.production!;
    expect(production.branchPolicy).toEqual({ kind: 'custom', patterns: [{ name: 'main', type: 'branch' }] });
    expect(production.reviewers.length).toBeGreaterThan(0);
    expect(production.preventSelfReview).toBe(true);
    expect(production.waitTimerMinutes).toBeGreaterThan(0);
    // The plan job before the approval holds read-only credentials only: no reviewer, main only.
    expect(byName['production-plan']).toMatchObject({
      reviewers: [],
      branchPolicy: { kind: 'custom', patterns: [{ name: 'main', type: 'branch' }] },
    });
  });

  test('the migrations and checks load in the run-migrations format', async () => {
    const migrations = await loadMigrations(join(SHOP, 'migrations'));
    expect(migrations.map((m) => [m.id, m.name, m.upTransactional, m.down !== undefined])).toEqual([
      ['1', 'create_products', true, true],
      ['2', 'create_orders', true, true],
      ['3', 'index_orders_by_customer', false, true],
    ]);
    const checks = await loadChecks(join(SHOP, 'checks'));
    expect(checks.map((c) => c.name)).toEqual(['paid_orders_have_items']);
  });
});

const postgres = postgresAvailable();

(postgres ? describe : describe.skip)('examples/shop migrations on PostgreSQL', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });

  test('up, verify with the integrity check, a failing check, and down to nothing', async () => {
    const databaseUrl = await server.createDatabase('shop');
    const base = {
      databaseUrl,
      dir: join(SHOP, 'migrations'),
      checksDir: join(SHOP, 'checks'),
      lockTimeoutMs: 10_000,
      logger: new MemoryLogger(),
    };
    const up = await runMigrations({ ...base, command: 'up' });
    expect(up.applied).toEqual(['1', '2', '3']);
    expect(up.checks.map((c) => [c.name, c.passed, c.rowCount])).toEqual([
      ['paid_orders_have_items', true, 0],
    ]);

    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    await client.query("INSERT INTO orders (customer, status) VALUES ('ada', 'paid')");
    await client.end();
    await expect(runMigrations({ ...base, command: 'verify' })).rejects.toMatchObject({
      reason: 'checks-failed',
    });

    const down = await runMigrations({ ...base, command: 'down', target: '0' });
    expect(down.reverted).toEqual(['3', '2', '1']);
  });
});
