import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect } from '@jest/globals';
import { type KubeSim, startKubeSim } from '../../tooling/kube-sim/index.ts';
import { hasKubectl, kubectl, removeKubectlCache, kubectlTest as test, until } from './helpers.ts';

let sim: KubeSim;
let dir: string;

function app(name: string, image: string, extra = ''): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  labels: {app: ${name}}
spec:
  replicas: 3
${extra}  selector:
    matchLabels: {app: ${name}}
  template:
    metadata:
      labels: {app: ${name}}
    spec:
      containers:
      - name: app
        image: ${image}
        ports:
        - containerPort: 8080
        env:
        - {name: MODE, value: normal}
---
apiVersion: v1
kind: Service
metadata:
  name: ${name}
spec:
  selector: {app: ${name}}
  ports:
  - port: 80
    targetPort: 8080
`;
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
}

// biome-ignore lint/suspicious/noExplicitAny: kubectl's JSON output is read field by field in assertions
async function json(args: string[]): Promise<Record<string, any>> {
  const out = await kubectl(sim, [...args, '-o', 'json']);
  if (out.code !== 0) throw new Error(out.stderr);
  return JSON.parse(out.stdout);
}

beforeAll(async () => {
  sim = await startKubeSim({
    timeScale: 50,
    users: [{ token: 'dev-token', name: 'dev', namespaces: ['dev'] }],
    namespaces: ['dev', 'staging'],
    images: [
      { pattern: 'registry/app:missing-*', mode: 'pull-error' },
      { pattern: 'registry/app:crash-*', mode: 'crash' },
      { pattern: 'registry/app:slow-*', startupMs: 100_000, readyMs: 50_000 },
    ],
  });
  dir = mkdtempSync(join(tmpdir(), 'kube-sim-kubectl-'));
});

afterAll(async () => {
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
  removeKubectlCache();
});

describe('kubectl against kube-sim', () => {
  test('applies manifests from files, gets them as JSON and waits for the rollout', async () => {
    const applied = await kubectl(sim, ['apply', '-f', file('web.yaml', app('web', 'registry/app:v1'))]);
    expect(applied).toMatchObject({ code: 0, stdout: 'deployment.apps/web created\nservice/web created\n' });
    const status = await kubectl(sim, ['rollout', 'status', 'deployment/web', '--timeout=60s']);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('deployment "web" successfully rolled out');
    const d = await json(['get', 'deployment', 'web']);
    expect(d['status']).toMatchObject({
      replicas: 3,
      readyReplicas: 3,
      availableReplicas: 3,
      updatedReplicas: 3,
    });
    const again = await kubectl(sim, ['apply', '-f', join(dir, 'web.yaml')]);
    expect(again.stdout).toBe('deployment.apps/web unchanged\nservice/web unchanged\n');
    const table = await kubectl(sim, ['get', 'pods', '-l', 'app=web']);
    expect(table.stdout).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n/);
    expect(table.stdout.match(/1\/1\s+Running/g)).toHaveLength(3);
    const ep = await json(['get', 'endpoints', 'web']);
    expect(ep['subsets'][0]['addresses']).toHaveLength(3);
  });

  test('applies the output of kubectl kustomize piped into kubectl apply -f -', async () => {
    file('k/base/app.yaml', app('shop', 'registry/shop:v1'));
    file('k/base/kustomization.yaml', 'resources:\n- app.yaml\n');
    file(
      'k/overlays/staging/kustomization.yaml',
      'namespace: staging\nresources:\n- ../../base\nimages:\n- name: registry/shop\n  newTag: v2\nreplicas:\n- name: shop\n  count: 2\ncommonLabels:\n  env: staging\n',
    );
    const rendered = await kubectl(sim, ['kustomize', join(dir, 'k/overlays/staging')]);
    expect(rendered.code).toBe(0);
    const applied = await kubectl(sim, ['apply', '-f', '-'], rendered.stdout);
    expect(applied).toMatchObject({
      code: 0,
      stdout: 'service/shop created\ndeployment.apps/shop created\n',
    });
    expect(
      (await kubectl(sim, ['-n', 'staging', 'rollout', 'status', 'deploy/shop', '--timeout=60s'])).code,
    ).toBe(0);
    const d = await json(['-n', 'staging', 'get', 'deploy', 'shop']);
    expect(d['spec']['template']['spec']['containers'][0]['image']).toBe('registry/shop:v2');
    expect(d['status']['availableReplicas']).toBe(2);
    expect(d['metadata']['labels']).toMatchObject({ env: 'staging' });
  });

  test('patches with strategic, merge and json types and scales', async () => {
    const strategic = await kubectl(sim, [
      'patch',
      'deploy',
      'web',
      '--type=strategic',
      '-p',
      '{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"EXTRA","value":"1"}]}]}}}}',
    ]);
    expect(strategic).toMatchObject({ code: 0, stdout: 'deployment.apps/web patched\n' });
    expect(
      (
        await kubectl(sim, [
          'patch',
          'deploy',
          'web',
          '--type=merge',
          '-p',
          '{"metadata":{"labels":{"tier":"front"}}}',
        ])
      ).code,
    ).toBe(0);
    expect(
      (
        await kubectl(sim, [
          'patch',
          'deploy',
          'web',
          '--type=json',
          '-p',
          '[{"op":"add","path":"/metadata/annotations/owner","value":"team-a"}]',
        ])
      ).code,
    ).toBe(0);
    const d = await json(['get', 'deploy', 'web']);
    expect(d['spec']['template']['spec']['containers'][0]['env']).toEqual([
      { name: 'MODE', value: 'normal' },
      { name: 'EXTRA', value: '1' },
    ]);
    expect(d['metadata']['labels']['tier']).toBe('front');
    expect(d['metadata']['annotations']['owner']).toBe('team-a');
    expect((await kubectl(sim, ['rollout', 'status', 'deploy/web', '--timeout=60s'])).code).toBe(0);

    const scaled = await kubectl(sim, ['scale', 'deploy/web', '--replicas=5']);
    expect(scaled).toMatchObject({ code: 0, stdout: 'deployment.apps/web scaled\n' });
    expect((await kubectl(sim, ['rollout', 'status', 'deploy/web', '--timeout=60s'])).code).toBe(0);
    expect((await json(['get', 'deploy', 'web']))['status']['availableReplicas']).toBe(5);
  });

  test("rollout status fails with kubectl's message when the progress deadline passes", async () => {
    const manifest = app('doomed', 'registry/app:missing-1', '  progressDeadlineSeconds: 60\n');
    expect((await kubectl(sim, ['apply', '-f', file('doomed.yaml', manifest)])).code).toBe(0);
    const status = await kubectl(sim, ['rollout', 'status', 'deploy/doomed', '--timeout=60s']);
    expect(status.code).toBe(1);
    expect(status.stderr).toContain('error: deployment "doomed" exceeded its progress deadline');
    const pods = await kubectl(sim, ['get', 'pods', '-l', 'app=doomed']);
    expect(pods.stdout).toMatch(/ErrImagePull|ImagePullBackOff/);
  });

  test('rollout undo returns to the previous template and revision numbering continues', async () => {
    expect(
      (await kubectl(sim, ['apply', '-f', file('undo.yaml', app('undo', 'registry/app:v1'))])).code,
    ).toBe(0);
    expect((await kubectl(sim, ['rollout', 'status', 'deploy/undo', '--timeout=60s'])).code).toBe(0);
    expect((await kubectl(sim, ['set', 'image', 'deploy/undo', 'app=registry/app:crash-2'])).code).toBe(0);
    await until(
      'the crashing revision to exist',
      async () =>
        (await json(['get', 'deploy', 'undo']))['metadata']['annotations'][
          'deployment.kubernetes.io/revision'
        ] === '2',
    );
    const undo = await kubectl(sim, ['rollout', 'undo', 'deploy/undo']);
    expect(undo).toMatchObject({ code: 0, stdout: 'deployment.apps/undo rolled back\n' });
    expect((await kubectl(sim, ['rollout', 'status', 'deploy/undo', '--timeout=60s'])).code).toBe(0);
    const d = await json(['get', 'deploy', 'undo']);
    expect(d['spec']['template']['spec']['containers'][0]['image']).toBe('registry/app:v1');
    expect(d['metadata']['annotations']['deployment.kubernetes.io/revision']).toBe('3');
    const rs = await json(['get', 'rs', '-l', 'app=undo']);
    expect(rs['items']).toHaveLength(2);
    expect(
      (await kubectl(sim, ['annotate', 'deploy/undo', 'kubernetes.io/change-cause=rolled back after crash']))
        .code,
    ).toBe(0);
    await until('the change cause on the ReplicaSet', async () => {
      const history = await kubectl(sim, ['rollout', 'history', 'deploy/undo']);
      return /REVISION\s+CHANGE-CAUSE\n2\s+<none>\n3\s+rolled back after crash/.test(history.stdout);
    });
  });

  test('server-side dry run validates without changing anything', async () => {
    const changed = app('web', 'registry/app:v9').replace('replicas: 3', 'replicas: 7');
    const dry = await kubectl(sim, ['apply', '--dry-run=server', '-f', file('web-dry.yaml', changed)]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('deployment.apps/web configured (server dry run)');
    const d = await json(['get', 'deploy', 'web']);
    expect(d['spec']['replicas']).toBe(5);
    expect(d['spec']['template']['spec']['containers'][0]['image']).toBe('registry/app:v1');
    const created = await kubectl(sim, [
      'apply',
      '--dry-run=server',
      '-f',
      file('new-dry.yaml', app('ghost', 'registry/app:v1')),
    ]);
    expect(created.stdout).toContain('deployment.apps/ghost created (server dry run)');
    expect((await kubectl(sim, ['get', 'deploy', 'ghost'])).stderr).toContain('NotFound');
  });

  test('delete cascades to ReplicaSets and pods, or orphans them when asked', async () => {
    expect(
      (await kubectl(sim, ['apply', '-f', file('gone.yaml', app('gone', 'registry/app:v1'))])).code,
    ).toBe(0);
    expect((await kubectl(sim, ['rollout', 'status', 'deploy/gone', '--timeout=60s'])).code).toBe(0);
    const deleted = await kubectl(sim, ['delete', 'deploy', 'gone']);
    expect(deleted).toMatchObject({ code: 0, stdout: 'deployment.apps "gone" deleted\n' });
    await until(
      'pods gone',
      async () => (await json(['get', 'pods,rs', '-l', 'app=gone']))['items'].length === 0,
    );

    expect(
      (await kubectl(sim, ['apply', '-f', file('kept.yaml', app('kept', 'registry/app:v1'))])).code,
    ).toBe(0);
    expect((await kubectl(sim, ['rollout', 'status', 'deploy/kept', '--timeout=60s'])).code).toBe(0);
    expect((await kubectl(sim, ['delete', 'deploy', 'kept', '--cascade=orphan'])).code).toBe(0);
    const left = await json(['get', 'rs', '-l', 'app=kept']);
    expect(left['items']).toHaveLength(1);
    expect(left['items'][0]['metadata']['ownerReferences']).toBeUndefined();
  });

  test('reports 401, 403, 409 and 422 the way kubectl prints real ones', async () => {
    const badToken = sim.writeKubeconfig('not-a-token');
    const unauthorized = await kubectl(sim, ['get', 'pods'], undefined, badToken);
    expect(unauthorized.code).toBe(1);
    expect(unauthorized.stderr).toContain('You must be logged in to the server');

    const dev = sim.writeKubeconfig('dev-token', 'dev');
    expect((await kubectl(sim, ['get', 'pods'], undefined, dev)).code).toBe(0);
    const forbidden = await kubectl(sim, ['get', 'pods', '-n', 'staging'], undefined, dev);
    expect(forbidden.stderr).toContain(
      'Error from server (Forbidden): pods is forbidden: User "dev" cannot list resource "pods" in API group "" in the namespace "staging"',
    );

    const exists = await kubectl(sim, ['create', '-f', join(dir, 'web.yaml')]);
    expect(exists.stderr).toContain('Error from server (AlreadyExists)');
    expect(exists.stderr).toContain('deployments.apps "web" already exists');

    const conflict = await kubectl(sim, ['apply', '--server-side', '-f', join(dir, 'web.yaml')]);
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toContain(
      'Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas',
    );
    const forced = await kubectl(sim, [
      'apply',
      '--server-side',
      '--force-conflicts',
      '-f',
      join(dir, 'web.yaml'),
    ]);
    expect(forced).toMatchObject({
      code: 0,
      stdout: 'deployment.apps/web serverside-applied\nservice/web serverside-applied\n',
    });

    const invalid = app('bad', 'registry/app:v1').replace(
      'labels: {app: bad}\n    spec',
      'labels: {app: other}\n    spec',
    );
    const rejected = await kubectl(sim, ['apply', '-f', file('bad.yaml', invalid)]);
    expect(rejected.code).toBe(1);
    expect(rejected.stderr).toContain(
      'The Deployment "bad" is invalid: spec.template.metadata.labels: Invalid value: {"app":"other"}: `selector` does not match template `labels`',
    );
  });

  test('create generators (protobuf bodies) work, and deleting a namespace removes its contents', async () => {
    for (const args of [
      ['create', 'namespace', 'scratch'],
      ['-n', 'scratch', 'create', 'configmap', 'cfg', '--from-literal=a=b'],
      ['-n', 'scratch', 'create', 'secret', 'generic', 'db', '--from-literal=password=s3cr3t'],
      [
        '-n',
        'scratch',
        'create',
        'deployment',
        'hello',
        '--image=registry/hello:v1',
        '--replicas=2',
        '--port=8080',
      ],
      ['-n', 'scratch', 'expose', 'deployment', 'hello', '--port=80', '--target-port=8080'],
    ]) {
      const out = await kubectl(sim, args);
      expect({ args, code: out.code, stderr: out.stderr }).toEqual({ args, code: 0, stderr: '' });
    }
    expect(
      (await kubectl(sim, ['-n', 'scratch', 'rollout', 'status', 'deploy/hello', '--timeout=60s'])).code,
    ).toBe(0);
    expect((await json(['-n', 'scratch', 'get', 'cm', 'cfg']))['data']).toEqual({ a: 'b' });
    expect(
      Buffer.from(
        (await json(['-n', 'scratch', 'get', 'secret', 'db']))['data']['password'],
        'base64',
      ).toString(),
    ).toBe('s3cr3t');
    expect(
      (await json(['-n', 'scratch', 'get', 'endpoints', 'hello']))['subsets'][0]['addresses'],
    ).toHaveLength(2);
    expect((await kubectl(sim, ['delete', 'namespace', 'scratch'])).stdout).toBe(
      'namespace "scratch" deleted\n',
    );
    await until(
      'contents gone',
      async () => (await json(['get', 'deploy,pods,cm', '-A', '-l', 'app=hello']))['items'].length === 0,
    );
  });

  test('rollout status survives dropped watch connections', async () => {
    expect(
      (await kubectl(sim, ['apply', '-f', file('slow.yaml', app('slow', 'registry/app:slow-1'))])).code,
    ).toBe(0);
    let finished = false;
    const status = kubectl(sim, ['rollout', 'status', 'deploy/slow', '--timeout=120s']).finally(() => {
      finished = true;
    });
    await until('kubectl to watch', () => sim.openWatches > 0);
    const before = sim.watchesStarted;
    sim.dropWatches();
    await until('kubectl to watch again', () => sim.watchesStarted > before || finished);
    sim.dropWatches();
    const out = await status;
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('deployment "slow" successfully rolled out');
    expect(sim.watchesStarted).toBeGreaterThan(before);
  });
});

if (!hasKubectl) console.warn('kube-sim kubectl tests skipped: kubectl not found on PATH');
