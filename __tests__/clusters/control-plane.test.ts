/**
 * The real control plane itself: its CLI, what it enforces (RBAC, validation, graceful deletion)
 * and the KWOK stages that give its pods kube-sim's image behaviours.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type Cluster, clusterKinds, startCluster } from '../../tooling/cluster.ts';
import { podStages, stagesConfig } from '../../tooling/control-plane/stages.ts';

const run = promisify(execFile);
const real = clusterKinds().includes('real');

describe('KWOK stages for the image behaviours', () => {
  test('every pod stage selects on the first behaviour whose pattern matches, like kube-sim', () => {
    const stages = podStages({
      images: [
        { pattern: '*:crash*', mode: 'crash' },
        { pattern: /:v2$/, mode: 'never-ready' },
      ],
      timeScale: 2,
    });
    const names = stages.map((s) => /name: ([\w-]+)/.exec(s)![1]);
    expect(names).toEqual([
      'pod-crash-b0',
      'pod-never-ready-b1',
      'pod-ready-default',
      'pod-complete',
      'pod-delete',
    ]);
    expect(stages[0]).toContain('test("^.*:crash.*$") then "b0" elif test(":v2$") then "b1"');
    // Delays are simulated milliseconds, scaled like kube-sim's: (300 pull + 500 start + 1000 run) / 2.
    expect(stages[0]).toContain('durationMilliseconds: 900');
  });

  test('a pattern KWOK cannot evaluate is refused when the cluster starts, not ignored', () => {
    expect(() => stagesConfig({ images: [{ pattern: /(?=x)a/, mode: 'crash' }], timeScale: 1 })).toThrow(
      /look-around/,
    );
  });
});

(real ? describe : describe.skip)('the real control plane', () => {
  let cluster: Cluster;
  const kubectl = async (kubeconfig: string, ...args: string[]) =>
    (await run('kubectl', args, { env: { ...process.env, KUBECONFIG: kubeconfig } })).stdout;

  beforeAll(async () => {
    cluster = await startCluster({ kind: 'real', namespaces: ['app'] });
  }, 180_000);
  afterAll(async () => {
    await cluster?.close();
  });

  test('enforces RBAC for a ServiceAccount token from TokenRequest', async () => {
    const kubeconfig = await cluster.kubeconfigFor({
      namespace: 'app',
      name: 'reader',
      rules: [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list'] }],
    });
    expect((await kubectl(kubeconfig, 'auth', 'can-i', 'list', 'deployments', '-n', 'app')).trim()).toBe(
      'yes',
    );
    await expect(kubectl(kubeconfig, 'auth', 'can-i', 'delete', 'deployments', '-n', 'app')).rejects.toMatchObject({
      stdout: 'no\n',
    });
    await expect(kubectl(kubeconfig, 'get', 'secrets', '-n', 'app')).rejects.toThrow(
      /User "system:serviceaccount:app:reader" cannot list resource "secrets"/,
    );
  });

  test('rejects what kube-sim once stored: unknown fields under strict validation, wrong types', async () => {
    const bad = await cluster.api('POST', '/apis/apps/v1/namespaces/app/deployments?fieldValidation=Strict', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'typo' },
      spec: {
        replicass: 2,
        selector: { matchLabels: { a: 'b' } },
        template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'x' }] } },
      },
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('unknown field \\"spec.replicass\\"');
    const typed = await cluster.api('POST', '/api/v1/namespaces/app/configmaps', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 't' },
      data: { PORT: 8080 },
    });
    expect(typed.status).toBe(400);
  });

  test('pods terminate gracefully: Terminating with a deletionTimestamp, then gone', async () => {
    const admin = cluster.kubeconfigPath;
    await kubectl(admin, 'run', 'p', '-n', 'app', '--image=registry.local/x:v1');
    await kubectl(admin, 'wait', '--for=condition=Ready', 'pod/p', '-n', 'app', '--timeout=60s');
    await kubectl(admin, 'delete', 'pod', 'p', '-n', 'app', '--wait=false');
    const pod = JSON.parse(await kubectl(admin, 'get', 'pod', 'p', '-n', 'app', '-o', 'json')) as {
      metadata: { deletionTimestamp?: string };
    };
    expect(pod.metadata.deletionTimestamp).toBeDefined();
    await kubectl(admin, 'wait', '--for=delete', 'pod/p', '-n', 'app', '--timeout=60s');
  }, 90_000);
});

(real ? describe : describe.skip)('the control-plane CLI', () => {
  test('prints the kubeconfig path as kube-sim’s CLI does, serves kubectl, and cleans up on Ctrl-C', async () => {
    const child = spawn(process.execPath, ['tooling/control-plane/cli.ts', '--nodes', '1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    for (let i = 0; !/^export KUBECONFIG=(.+)$/m.test(out); i++) {
      if (i > 1200) throw new Error(`no kubeconfig line after 120 s: ${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(out).toMatch(/^kubeconfig: .+kubeconfig$/m);
    const path = /^export KUBECONFIG=(.+)$/m.exec(out)![1]!;
    const nodes = (
      await run('kubectl', ['get', 'nodes', '-o', 'name'], { env: { ...process.env, KUBECONFIG: path } })
    ).stdout;
    expect(nodes.trim()).toBe('node/kwok-node-0');
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(existsSync(path)).toBe(false);
  }, 150_000);

  test('rejects a malformed --nodes before starting anything', async () => {
    const child = spawn(process.execPath, ['tooling/control-plane/cli.ts', '--nodes', 'many'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    expect(await new Promise((resolve) => child.on('exit', resolve))).toBe(2);
    expect(err).toContain('--nodes has "many", which is not a whole number from 1 to 100');
  });
});
