import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type KubeSim, startKubeSim } from '../../packages/kube-sim/index.ts';
import { runBuiltAction, type StepResult } from '../../packages/runner/action-runner.ts';

const run = promisify(execFile);
let sim: KubeSim;
let work: string;

beforeAll(async () => {
  sim = await startKubeSim({
    timeScale: 20,
    images: [{ pattern: '*:crash*', mode: 'crash', crashAfterMs: 500 }],
  });
  work = mkdtempSync(join(tmpdir(), 'deploy-env-hardening-'));
});
afterAll(async () => {
  await sim?.close();
  rmSync(work, { recursive: true, force: true });
});

async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run('kubectl', args, { env: { ...process.env, KUBECONFIG: sim.kubeconfigPath } });
  return stdout;
}

function app(dir: string, name: string, image: string, extra = ''): string {
  const path = join(work, dir);
  mkdirSync(path, { recursive: true });
  writeFileSync(
    join(path, 'app.yaml'),
    `apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}, labels: { app: ${name} } }
spec:
  replicas: 2
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec:
      containers:
        - name: web
          image: ${image}
${extra}`,
  );
  return path;
}

function deploy(inputs: Record<string, string>): Promise<StepResult> {
  return runBuiltAction('deploy-env', {
    inputs: {
      kubeconfig: sim.kubeconfigPath,
      'fail-fast-after': '2s',
      timeout: '60s',
      'github-deployment': 'false',
      'create-namespace': 'true',
      ...inputs,
    },
    cwd: work,
    env: { GITHUB_WORKSPACE: work },
    timeoutMs: 180_000,
  });
}

const errors = (step: StepResult) =>
  step.annotations.filter((a) => a.level === 'error').map((a) => a.message);

const imageOf = (namespace: string, name: string) =>
  (
    sim.peek('Deployment', namespace, name) as
      | { spec: { template: { spec: { containers: { image: string }[] } } } }
      | undefined
  )?.spec.template.spec.containers[0]?.image;

/** Once the new template is in the cluster, the next PATCH of a Deployment is the rollback's. */
async function whenApplied(namespace: string, name: string, image: string): Promise<void> {
  while (imageOf(namespace, name) !== image) await new Promise((r) => setTimeout(r, 10));
}

describe('deploy-env rollback under API faults', () => {
  test('a rollback PATCH that meets 503s is retried; one that keeps failing says NOT ROLLED BACK, and the next failure goes back to the last good release', async () => {
    const ns = 'rb-dev';
    const base = { environment: 'dev', app: 'rb', namespace: ns };
    const good = await deploy({ ...base, manifests: app('rb1', 'rb', 'registry.local/rb:v1') });
    expect(errors(good)).toEqual([]);

    // Three 503s on the rollback PATCH: retried, rolled back.
    const second = deploy({ ...base, manifests: app('rb2', 'rb', 'registry.local/rb:crash-2') });
    await whenApplied(ns, 'rb', 'registry.local/rb:crash-2');
    sim.setFaults({ failNext: 3, statuses: [503], match: { verb: 'patch', resource: 'deployments' } });
    const retried = await second;
    sim.setFaults({});
    expect(retried.exitCode).toBe(1);
    expect(retried.outputs['rolled-back']).toBe('true');
    expect(retried.outputs.failure).toMatch(/^Rolled back to the previous version: /);
    expect(imageOf(ns, 'rb')).toBe('registry.local/rb:v1');

    // Every rollback PATCH fails: the step says so everywhere it reports.
    const third = deploy({
      ...base,
      timeout: '20s',
      manifests: app('rb3', 'rb', 'registry.local/rb:crash-3'),
    });
    await whenApplied(ns, 'rb', 'registry.local/rb:crash-3');
    sim.setFaults({ errorRate: 1, statuses: [503], match: { verb: 'patch', resource: 'deployments' } });
    const stuck = await third;
    sim.setFaults({});
    expect(stuck.exitCode).toBe(1);
    expect(stuck.outputs['rolled-back']).toBe('false');
    expect(stuck.outputs.failure).toMatch(
      /^NOT ROLLED BACK: rolling back deployment "rb" failed: .*HTTP 503/,
    );
    expect(stuck.summary).toContain('NOT ROLLED BACK');
    expect(errors(stuck).at(-1)).toMatch(/NOT ROLLED BACK: .*the failed release is still deployed/);
    expect(JSON.parse(stuck.outputs.result!).notRolledBack).toHaveLength(1);
    expect(imageOf(ns, 'rb')).toBe('registry.local/rb:crash-3');

    // The next failure goes back to v1, the last release that finished, not to crash-3.
    const fourth = await deploy({ ...base, manifests: app('rb4', 'rb', 'registry.local/rb:crash-4') });
    expect(fourth.exitCode).toBe(1);
    expect(fourth.outputs['rolled-back']).toBe('true');
    expect(imageOf(ns, 'rb')).toBe('registry.local/rb:v1');
    const status = JSON.parse(await kubectl('get', 'deployment', 'rb', '-n', ns, '-o', 'json')) as {
      status: { availableReplicas?: number };
    };
    expect(status.status.availableReplicas).toBe(2);
  });

  test('failing releases under 20% API 503s end on the previous version', async () => {
    const ns = 'flaky-dev';
    const base = { environment: 'dev', app: 'flaky', namespace: ns };
    expect(
      errors(await deploy({ ...base, manifests: app('fl0', 'flaky', 'registry.local/flaky:v1') })),
    ).toEqual([]);
    sim.setFaults({ errorRate: 0.2, statuses: [503], retryAfterSeconds: 0 });
    try {
      for (const n of [1, 2]) {
        const step = await deploy({
          ...base,
          manifests: app(`fl${n}`, 'flaky', `registry.local/flaky:crash-${n}`),
        });
        expect(step.exitCode).toBe(1);
        expect(step.outputs['rolled-back']).toBe('true');
        expect(imageOf(ns, 'flaky')).toBe('registry.local/flaky:v1');
      }
    } finally {
      sim.setFaults({});
    }
  });
});
