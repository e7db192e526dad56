import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { clusterKinds } from '../../tooling/cluster.ts';
import { readmeRole } from '../../tooling/readme-roles.ts';
import { runBuiltAction, type StepResult } from '../../tooling/runners/action-runner.ts';
import { kubectlFor, useCluster, useWorkDir } from '../../tooling/test-support/fixtures.ts';

const errors = (s: StepResult) => s.annotations.filter((a) => a.level === 'error').map((a) => a.message);

type Deployment = {
  spec: {
    template: { spec: { containers: { image: string; envFrom?: { configMapRef?: { name: string } }[] }[] } };
  };
};

describe.each(clusterKinds())('older configuration generations on %s', (kind) => {
  const cluster = useCluster(kind, { timeScale: 4 });
  const work = useWorkDir(`generations-${kind}-`);
  const { kubectl, kubectlJson } = kubectlFor(cluster, work);
  const get = <T>(...args: string[]) => kubectlJson<T>('get', ...args);
  const configMaps = async (ns: string) =>
    (
      await get<{ items: { metadata: { name: string } }[] }>(
        'configmaps',
        '-n',
        ns,
        '-l',
        'pipeline.dev/app=shop',
      )
    ).items
      .map((i) => i.metadata.name)
      .sort();
  const liveGeneration = async (ns: string, deployment: string) =>
    (await get<Deployment>(`deployment/${deployment}`, '-n', ns)).spec.template.spec.containers[0]!
      .envFrom![0]!.configMapRef!.name;

  /** The overlay of release `n`: its image and a configuration that differs from every other release's. */
  function overlay(ns: string, n: number, extra?: string): string {
    const dir = join(work, ns, `release-${n}`);
    mkdirSync(dir, { recursive: true });
    if (extra) writeFileSync(join(dir, 'extra.yaml'), extra);
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      `resources: [app.yaml${extra ? ', extra.yaml' : ''}]\nconfigMapGenerator:\n  - name: shop-settings\n    literals: [RELEASE=${n}, LOG_LEVEL=info]\n`,
    );
    writeFileSync(
      join(dir, 'app.yaml'),
      `apiVersion: apps/v1
kind: Deployment
metadata: { name: shop }
spec:
  replicas: 2
  selector: { matchLabels: { app: shop } }
  template:
    metadata: { labels: { app: shop } }
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: web
          image: registry.local/shop:v${n}
          envFrom: [{ configMapRef: { name: shop-settings } }]
---
apiVersion: v1
kind: Service
metadata: { name: shop }
spec:
  selector: { app: shop }
  ports: [{ port: 80, targetPort: 8080 }]
`,
    );
    return dir;
  }

  const release = async (action: 'canary-shift' | 'blue-green-switch', ns: string, n: number) => {
    const kubeconfig = await cluster.kubeconfigFor({
      namespace: ns,
      name: `pipeline-${action}`,
      rules: readmeRole(action),
    });
    const common = {
      kubeconfig,
      namespace: ns,
      environment: 'production',
      kustomize: overlay(ns, n),
      image: `registry.local/shop:v${n}`,
      'analysis-interval': '200ms',
      'analysis-count': '2',
      'fail-fast-after': '2s',
      timeout: '90s',
    };
    const step = await runBuiltAction(action, {
      inputs:
        action === 'canary-shift'
          ? {
              ...common,
              deployment: 'shop',
              steps: '50,100',
              checks: '- { name: canary pods, type: kubernetes, workload: deployment/shop-canary }',
            }
          : { ...common, app: 'shop', 'scale-down-delay': '200ms' },
      cwd: work,
      timeoutMs: 180_000,
    });
    expect(errors(step)).toEqual([]);
    return step;
  };

  /** A rolling release of deploy-env with prune, as deploy.yml's rolling step runs it, under its README Role. */
  const rolling = async (ns: string, n: number, extra?: string) => {
    const step = await runBuiltAction('deploy-env', {
      inputs: {
        kubeconfig: await cluster.kubeconfigFor({
          namespace: ns,
          name: 'pipeline-deploy-env',
          rules: readmeRole('deploy-env'),
        }),
        namespace: ns,
        environment: 'production',
        app: 'shop',
        kustomize: overlay(ns, n, extra),
        image: `registry.local/shop:v${n}`,
        prune: 'true',
        'github-deployment': 'false',
        'fail-fast-after': '2s',
        timeout: '90s',
      },
      cwd: work,
      timeoutMs: 150_000,
    });
    expect(errors(step)).toEqual([]);
    expect(step.outputs['rolled-back']).toBe('false');
    return step;
  };

  test('deploy-env rolling with prune: the live and the previous generation remain, other dropped objects go, and rollout undo finds its configuration', async () => {
    const ns = 'gen-rolling';
    await cluster.createNamespace(ns);
    const flags = 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: shop-flags }\ndata: { BETA: "off" }\n';
    const generations: string[] = [];
    for (const n of [1, 2, 3]) {
      await rolling(ns, n, n === 1 ? flags : undefined);
      generations.push(await liveGeneration(ns, 'shop'));
      // shop-flags is no configuration generation: dropped from the overlay, it is pruned at once.
      expect(await configMaps(ns)).toEqual(
        [...generations.slice(-2), ...(n === 1 ? ['shop-flags'] : [])].sort(),
      );
    }
    expect(new Set(generations).size).toBe(3);

    // kubectl's undo goes to release 2, whose ConfigMap is still there: its pods come up on it.
    await kubectl('rollout', 'undo', 'deployment/shop', '-n', ns);
    await kubectl('rollout', 'status', 'deployment/shop', '-n', ns, '--timeout=90s');
    expect(await liveGeneration(ns, 'shop')).toBe(generations[1]);
    expect(await configMaps(ns)).toContain(generations[1]);
    const d = await get<{ status: { availableReplicas?: number; updatedReplicas?: number } }>(
      'deployment/shop',
      '-n',
      ns,
    );
    expect(d.status).toMatchObject({ availableReplicas: 2, updatedReplicas: 2 });

    // The previous revision is the history's, not the previous release: after the undo it is
    // release 2's template, so release 4 keeps generation 2 and prunes generation 3.
    await rolling(ns, 4);
    const fourth = await liveGeneration(ns, 'shop');
    expect(await configMaps(ns)).toEqual([generations[1]!, fourth].sort());
  }, 600_000);

  test('canary-shift: after each promotion the live and the previous generation remain', async () => {
    const ns = 'gen-canary';
    await cluster.createNamespace(ns);
    const generations: string[] = [];
    for (const n of [1, 2, 3, 4]) {
      const step = await release('canary-shift', ns, n);
      expect(step.outputs.phase).toBe('promoted');
      generations.push(await liveGeneration(ns, 'shop'));
      // The first release is deployed directly: there is nothing older to prune yet.
      expect(await configMaps(ns)).toEqual(generations.slice(-2).sort());
    }
    expect(new Set(generations).size).toBe(4);
  }, 600_000);

  test('blue-green-switch: after each final switch the two colours keep their generations, older ones go', async () => {
    const ns = 'gen-bg';
    await cluster.createNamespace(ns);
    const generations: string[] = [];
    for (const n of [1, 2, 3, 4]) {
      const step = await release('blue-green-switch', ns, n);
      const live = step.outputs['active-color']!;
      expect(live).toBe(n % 2 === 1 ? 'blue' : 'green');
      generations.push(await liveGeneration(ns, `shop-${live}`));
      expect(await configMaps(ns)).toEqual(generations.slice(-2).sort());
    }
    // The colour switched away from still points at a ConfigMap that exists: a switch back finds it.
    expect(await configMaps(ns)).toContain(await liveGeneration(ns, 'shop-green'));
    expect(await configMaps(ns)).toContain(await liveGeneration(ns, 'shop-blue'));
  }, 600_000);
});
