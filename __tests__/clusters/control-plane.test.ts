/**
 * The real control plane itself: its CLI, what it enforces (RBAC, validation, graceful deletion)
 * and the KWOK stages that give its pods kube-sim's image behaviours.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, test } from '@jest/globals';
import { clusterKinds, startCluster } from '../../tooling/cluster.ts';
import { podStages, stagesConfig } from '../../tooling/control-plane/stages.ts';
import { useCluster } from '../../tooling/test-support/fixtures.ts';

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
  const cluster = useCluster('real', { namespaces: ['app'] });
  const kubectl = async (kubeconfig: string, ...args: string[]) =>
    (await run('kubectl', args, { env: { ...process.env, KUBECONFIG: kubeconfig } })).stdout;

  test('enforces RBAC for a ServiceAccount token from TokenRequest', async () => {
    const kubeconfig = await cluster.kubeconfigFor({
      namespace: 'app',
      name: 'reader',
      rules: [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list'] }],
    });
    expect((await kubectl(kubeconfig, 'auth', 'can-i', 'list', 'deployments', '-n', 'app')).trim()).toBe(
      'yes',
    );
    await expect(
      kubectl(kubeconfig, 'auth', 'can-i', 'delete', 'deployments', '-n', 'app'),
    ).rejects.toMatchObject({
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
  function startCli(args: string[]) {
    const child = spawn(process.execPath, ['tooling/control-plane/cli.ts', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const ready = (async () => {
      for (let i = 0; !/^export KUBECONFIG=(.+)$/m.test(out); i++) {
        if (i > 1200) throw new Error(`no kubeconfig line after 120 s: ${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      return {
        out,
        kubeconfig: /^export KUBECONFIG=(.+)$/m.exec(out)![1]!,
        dir: /logs in (\S+?)\)/.exec(out)![1]!,
      };
    })();
    return { child, exited, ready };
  }
  const kubectlAt = async (kubeconfig: string, ...args: string[]) =>
    (await run('kubectl', args, { env: { ...process.env, KUBECONFIG: kubeconfig } })).stdout;
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  test('prints the kubeconfig path as kube-sim’s CLI does, serves kubectl with image behaviours, and cleans up on Ctrl-C', async () => {
    const cli = startCli(['--nodes', '1', '--image', '*:crash*=crash']);
    const { out, kubeconfig } = await cli.ready;
    expect(out).toMatch(/^kubeconfig: .+kubeconfig$/m);
    expect(out).toContain('(1 KWOK node, logs in');
    expect((await kubectlAt(kubeconfig, 'get', 'nodes', '-o', 'name')).trim()).toBe('node/kwok-node-0');
    // The server says which release it is, so kubectl's version skew checks work.
    expect(await kubectlAt(kubeconfig, 'version')).toMatch(/Server Version: v1\.36\.3/);
    await kubectlAt(kubeconfig, 'run', 'bad', '--image=registry.local/x:crash-1', '--restart=Always');
    for (let i = 0; ; i++) {
      const pod = JSON.parse(await kubectlAt(kubeconfig, 'get', 'pod', 'bad', '-o', 'json')) as {
        status: { containerStatuses?: { state: { waiting?: { reason: string } } }[] };
      };
      if (pod.status.containerStatuses?.[0]?.state.waiting?.reason === 'CrashLoopBackOff') break;
      if (i > 300)
        throw new Error(`the crash image never reached CrashLoopBackOff: ${JSON.stringify(pod.status)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    cli.child.kill('SIGINT');
    expect(await cli.exited).toBe(0);
    expect(existsSync(kubeconfig)).toBe(false);
  }, 150_000);

  test('a CLI killed with SIGKILL takes its components with it, and the next start removes its directory', async () => {
    const cli = startCli(['--nodes', '1']);
    const { dir } = await cli.ready;
    const { stdout } = await run('pgrep', ['-f', dir]);
    const components = stdout.trim().split('\n').map(Number);
    expect(components.length).toBeGreaterThanOrEqual(5);
    cli.child.kill('SIGKILL');
    await cli.exited;
    for (let i = 0; components.some(alive); i++) {
      if (i > 100)
        throw new Error(`components still running 10 s after the CLI died: ${components.filter(alive)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(existsSync(dir)).toBe(true);
    const next = await startCluster({ kind: 'real' });
    try {
      expect(existsSync(dir)).toBe(false);
    } finally {
      await next.close();
    }
  }, 180_000);

  test.each([
    [['--nodes', 'many'], '--nodes has "many", which is not a whole number from 1 to 100'],
    [['--bogus'], "Unknown option '--bogus'"],
    [['--image', 'x=boom'], '--image has "x=boom"; expected PATTERN=MODE with MODE one of ready, crash'],
  ])('rejects %j before starting anything, with the usage', async (args, message) => {
    const child = spawn(process.execPath, ['tooling/control-plane/cli.ts', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    expect(await new Promise((resolve) => child.on('exit', resolve))).toBe(2);
    expect(err).toContain(message);
    expect(err).toContain('usage: node tooling/control-plane/cli.ts');
    expect(err).not.toMatch(/\n\s+at /);
  });
});
