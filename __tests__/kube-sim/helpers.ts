import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import type { KubeSim } from '../../tooling/kube-sim/index.ts';

/** Polls until `check` returns a value (not undefined/false); the deadline only guards against hangs. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value as T;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`gave up waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 15));
  }
}

export function clients(sim: KubeSim, kubeconfigPath = sim.kubeconfigPath) {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return {
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    apps: kc.makeApiClient(k8s.AppsV1Api),
    batch: kc.makeApiClient(k8s.BatchV1Api),
    objects: k8s.KubernetesObjectApi.makeApiClient(kc),
  };
}

/** The HTTP status and Status body of a failed client-node call. */
export async function failure(
  call: Promise<unknown>,
): Promise<{ code: number; status: Record<string, unknown> }> {
  try {
    await call;
  } catch (error) {
    const e = error as { code?: number; body?: unknown };
    if (typeof e.code !== 'number') throw error;
    const status =
      typeof e.body === 'string'
        ? (JSON.parse(e.body) as Record<string, unknown>)
        : (e.body as Record<string, unknown>);
    return { code: e.code, status };
  }
  throw new Error('expected the call to fail');
}

export function deployment(
  name: string,
  image: string,
  extra: Record<string, unknown> = {},
): k8s.V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels: { app: name } },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'app', image, ports: [{ containerPort: 8080 }] }] },
      },
      ...extra,
    },
  } as k8s.V1Deployment;
}

function kubectlPresent(): boolean {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const hasKubectl = kubectlPresent();

/**
 * `test` when kubectl is installed; otherwise a skip with a message — except under CI=true, where a
 * missing kubectl fails the test instead of hiding it.
 */
export const kubectlTest: typeof test = ((name: string, fn: () => Promise<void>, timeout?: number) => {
  if (hasKubectl) return test(name, fn, timeout);
  if (process.env['CI'] === 'true') {
    return test(name, () => {
      throw new Error('kubectl is required for this test (CI=true) but was not found on PATH');
    });
  }
  return test.skip(`${name} (skipped: kubectl not found on PATH)`, fn);
}) as typeof test;

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

const cacheDir = mkdtempSync(join(tmpdir(), 'kube-sim-kubectl-cache-'));

/** Removes kubectl's discovery cache for this test file (call from afterAll). */
export function removeKubectlCache(): void {
  rmSync(cacheDir, { recursive: true, force: true });
}

export function kubectl(
  sim: KubeSim,
  args: string[],
  input?: string,
  kubeconfig = sim.kubeconfigPath,
): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      'kubectl',
      args,
      { env: { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: cacheDir }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}
