/**
 * Differential conformance: every case runs on each kind from clusterKinds() (kube-sim, and the
 * real control plane when it is built; under CI=true it must be), returns what it observed, and
 * the test asserts that each kind observed what the real server answers (the expectations were
 * recorded from kube-apiserver v1.36.3) and, when both ran, that kube-sim observed exactly what
 * the real server did. Each case gets a fresh namespace on every kind.
 */
import { execFile } from 'node:child_process';
import { request } from 'node:https';
import { afterAll, expect } from '@jest/globals';
import { type Cluster, type ClusterKind, type ClusterOptions, clusterKinds } from '../../tooling/cluster.ts';
import { useClusters } from '../../tooling/test-support/fixtures.ts';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
  text: string;
}

export interface Target {
  kind: ClusterKind;
  cluster: Cluster;
  namespace: string;
  /** A request as the admin (or with `token`); bodies are JSON unless a string is given. */
  call(
    method: string,
    path: string,
    body?: unknown,
    o?: { type?: string; token?: string; accept?: string },
  ): Promise<Reply>;
  kubectl(
    args: string[],
    o?: { input?: string; kubeconfig?: string },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
}

export function send(
  cluster: Cluster,
  method: string,
  path: string,
  body?: unknown,
  o: { type?: string; token?: string; accept?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${cluster.httpsUrl}${path}`,
      {
        method,
        ca: cluster.caCert,
        headers: {
          authorization: `Bearer ${o.token ?? cluster.token}`,
          'content-type': o.type ?? 'application/json',
          accept: o.accept ?? 'application/json',
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let parsed: Record<string, unknown> = {};
          try {
            parsed = JSON.parse(text) as Record<string, unknown>;
          } catch {}
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed, text });
        });
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.write(typeof body === 'string' ? body : JSON.stringify(body));
    req.end();
  });
}

function runKubectl(
  kubeconfig: string,
  args: string[],
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      'kubectl',
      args,
      { env: { ...process.env, KUBECONFIG: kubeconfig }, timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

export interface Suite {
  readonly kinds: ClusterKind[];
  /**
   * Runs `observe` on every kind (concurrently) in a fresh namespace, asserts each observation
   * against `expected` (toEqual, so asymmetric matchers may stand for what varies, e.g. uids),
   * and that kube-sim's equals the real server's when both ran.
   */
  same<T>(observe: (t: Target) => Promise<T>, expected: T): Promise<void>;
  /** Runs only on the kinds given (a case meaningful on one kind), asserting `expected`. */
  on<T>(kinds: ClusterKind[], observe: (t: Target) => Promise<T>, expected: T): Promise<void>;
  cluster(kind: ClusterKind): Cluster | undefined;
}

const timings = new Map<string, number>();

/**
 * clusterKinds(), or outside CI the one kind CONFORMANCE_KINDS names (bench/conformance.ts times
 * each kind on its own that way); CI always runs every kind.
 */
function kindsToRun(): ClusterKind[] {
  const all = clusterKinds();
  const only = process.env['CONFORMANCE_KINDS'];
  if (!only || process.env['CI'] === 'true') return all;
  const wanted = only.split(',').filter((k): k is ClusterKind => all.includes(k as ClusterKind));
  if (wanted.length === 0)
    throw new Error(`CONFORMANCE_KINDS=${only}: none of ${all.join(', ')} is available`);
  return wanted;
}

/** Starts one cluster of every kind for the test file; prints each kind's time when done. */
export function conformanceSuite(file: string, options: ClusterOptions = {}): Suite {
  const kinds = kindsToRun();
  const clusters = useClusters(kinds, options, (kind, ms) => timings.set(`${kind} start`, ms));
  let counter = 0;
  afterAll(() => {
    const line = kinds
      .map((k) => `${k}: start ${timings.get(`${k} start`) ?? 0} ms, cases ${timings.get(k) ?? 0} ms`)
      .join('; ');
    console.log(`conformance ${file}: ${line}`);
  });

  const target = async (kind: ClusterKind, namespace: string): Promise<Target> => {
    const cluster = clusters.get(kind)!;
    await cluster.createNamespace(namespace);
    return {
      kind,
      cluster,
      namespace,
      call: (method, path, body, o) => send(cluster, method, path, body, o),
      kubectl: (args, o = {}) => runKubectl(o.kubeconfig ?? cluster.kubeconfigPath, args, o.input),
    };
  };

  const observeOn = async <T>(on: ClusterKind[], observe: (t: Target) => Promise<T>) => {
    const namespace = `c${process.pid % 1000}-${++counter}`;
    const results = new Map<ClusterKind, T>();
    await Promise.all(
      on.map(async (kind) => {
        const t0 = Date.now();
        results.set(kind, await observe(await target(kind, namespace)));
        timings.set(kind, (timings.get(kind) ?? 0) + Date.now() - t0);
      }),
    );
    return results;
  };

  return {
    kinds,
    cluster: (kind) => clusters.get(kind),
    async same(observe, expected) {
      const results = await observeOn(kinds, observe);
      if (results.has('real') && results.has('kube-sim')) {
        expect({ 'kube-sim': results.get('kube-sim') }).toEqual({ 'kube-sim': results.get('real') });
      }
      for (const [kind, observed] of results) expect({ [kind]: observed }).toEqual({ [kind]: expected });
    },
    async on(only, observe, expected) {
      const results = await observeOn(
        only.filter((k) => kinds.includes(k)),
        observe,
      );
      for (const [kind, observed] of results) expect({ [kind]: observed }).toEqual({ [kind]: expected });
    },
  };
}

/** The parts of a Status reply the real server and kube-sim must agree on. */
export function statusOf(r: Reply): {
  code: number;
  reason?: unknown;
  message?: unknown;
  causes?: unknown;
} {
  const details = (r.body['details'] ?? {}) as Record<string, unknown>;
  return {
    code: r.status,
    ...(r.body['kind'] === 'Status' ? { reason: r.body['reason'], message: r.body['message'] } : {}),
    ...(details['causes'] ? { causes: details['causes'] } : {}),
  };
}

/** The Warning headers' texts. */
export function warningsOf(r: Reply): string[] {
  const h = r.headers['warning'];
  const list = Array.isArray(h) ? h : h ? [h] : [];
  return list
    .flatMap((w) => w.split(/,\s*(?=299 )/))
    .map((w) => JSON.parse(w.replace(/^299 - /, '')) as string);
}

export function deployment(
  name: string,
  extra: Record<string, unknown> = {},
  image = 'registry.example/app:v1',
) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'app', image, ports: [{ containerPort: 8080 }] }] },
      },
      ...extra,
    },
  };
}

/** Polls until `check` returns a value; the deadline only guards against hangs. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  ms = 60_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
