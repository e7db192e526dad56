import { describe, expect, test } from '@jest/globals';
import { clusterKinds } from '../../tooling/cluster.ts';
import { readmeRole } from '../../tooling/readme-roles.ts';
import { findLeaks, runBuiltAction, type StepResult } from '../../tooling/runners/action-runner.ts';
import { kubectlFor, useCluster, useWorkDir } from '../../tooling/test-support/fixtures.ts';

type Deployment = {
  metadata: { annotations?: Record<string, string> };
  spec: { replicas: number; template: { spec: { containers: { image: string }[] } } };
  status: { availableReplicas?: number; readyReplicas?: number };
};
const errors = (s: StepResult) => s.annotations.filter((a) => a.level === 'error').map((a) => a.message);

describe.each(clusterKinds())('rollouts on %s with the README Roles', (kind) => {
  const cluster = useCluster(kind, {
    timeScale: 4,
    images: [{ pattern: '*:crash*', mode: 'crash', crashAfterMs: 400 }],
  });
  const work = useWorkDir(`rollouts-${kind}-`);
  const { kubectl, kubectlJson, kubectlApply: apply } = kubectlFor(cluster, work);
  const get = <T>(...args: string[]) => kubectlJson<T>('get', ...args);
  const role = (action: string, ns: string) =>
    cluster.kubeconfigFor({ namespace: ns, name: `pipeline-${action}`, rules: readmeRole(action) });

  async function stable(ns: string, name: string, replicas: number, labels = `app: ${name}`) {
    await apply(
      ns,
      `apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}, labels: { app: shop } }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { ${labels} } }
  template:
    metadata: { labels: { ${labels} } }
    spec:
      terminationGracePeriodSeconds: 5
      containers: [{ name: web, image: registry.local/shop:v1, ports: [{ containerPort: 8080 }] }]
---
apiVersion: v1
kind: Service
metadata: { name: shop }
spec:
  selector: { ${labels} }
  ports: [{ port: 80, targetPort: 8080 }]
`,
    );
    await kubectl('rollout', 'status', `deployment/${name}`, '-n', ns, '--timeout=90s');
  }

  describe('health-gate', () => {
    test('Kubernetes checks pass a rolled-out Deployment and fail a crash-looping one with its reason', async () => {
      const ns = 'gate';
      const kubeconfig = await role('health-gate', ns);
      await stable(ns, 'shop', 2);
      await apply(
        ns,
        'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: broken }\nspec:\n  replicas: 1\n  selector: { matchLabels: { app: broken } }\n  template:\n    metadata: { labels: { app: broken } }\n    spec: { containers: [{ name: web, image: registry.local/shop:crash }] }\n',
      );
      const ok = await runBuiltAction('health-gate', {
        inputs: {
          kubeconfig,
          namespace: ns,
          count: '2',
          interval: '100ms',
          checks: '- { name: shop pods, type: kubernetes, workload: deployment/shop }',
        },
        cwd: work,
        timeoutMs: 60_000,
      });
      expect(errors(ok)).toEqual([]);
      expect(ok.outputs.verdict).toBe('passed');
      expect(JSON.parse(ok.outputs.evidence!).checks[0].measurements[0].message).toBe(
        '2/2 available, 0 restarts',
      );
      expect(findLeaks(ok, cluster.token)).toEqual([]);

      const bad = await runBuiltAction('health-gate', {
        inputs: {
          kubeconfig,
          namespace: ns,
          count: '20',
          interval: '250ms',
          checks: '- { name: broken pods, type: kubernetes, workload: deployment/broken }',
        },
        cwd: work,
        timeoutMs: 60_000,
      });
      expect(bad.exitCode).toBe(1);
      expect(bad.outputs.verdict).toBe('failed');
      expect(errors(bad)[0]).toMatch(/broken pods failed 1 time\(s\).*0 of 1 replicas are available/);
    }, 120_000);
  });

  describe('canary-shift, replicas router', () => {
    const canary = async (ns: string, inputs: Record<string, string>) =>
      runBuiltAction('canary-shift', {
        inputs: {
          kubeconfig: await role('canary-shift', ns),
          namespace: ns,
          deployment: 'shop',
          router: 'replicas',
          'analysis-interval': '200ms',
          'analysis-count': '2',
          'fail-fast-after': '2s',
          timeout: '90s',
          checks: '- { name: canary pods, type: kubernetes, workload: deployment/shop-canary }',
          ...inputs,
        },
        cwd: work,
        timeoutMs: 180_000,
      });

    test('a healthy canary goes 10 → 50 → 100 by pod share and is promoted', async () => {
      const ns = 'canary-ok';
      await cluster.createNamespace(ns);
      await stable(ns, 'shop', 10);
      const step = await canary(ns, { image: 'registry.local/shop:v2' });
      expect(errors(step)).toEqual([]);
      expect(step.outputs.phase).toBe('promoted');
      const s = await get<Deployment>('deployment/shop', '-n', ns);
      expect([s.spec.replicas, s.spec.template.spec.containers[0]!.image]).toEqual([
        10,
        'registry.local/shop:v2',
      ]);
      for (
        let i = 0;
        (await get<Deployment>('deployment/shop', '-n', ns)).status.availableReplicas !== 10;
        i++
      ) {
        if (i > 200) throw new Error('the promoted stable never had 10 available replicas');
        await new Promise((r) => setTimeout(r, 100));
      }
      const names = (
        await get<{ items: { metadata: { name: string } }[] }>('deployments', '-n', ns)
      ).items.map((d) => d.metadata.name);
      expect(names).not.toContain('shop-canary');
    }, 240_000);

    test('a check on the stable Deployment, which each step scales, does not abort a healthy canary', async () => {
      const ns = 'canary-both';
      await cluster.createNamespace(ns);
      await stable(ns, 'shop', 10);
      const step = await canary(ns, {
        image: 'registry.local/shop:v2',
        checks:
          '- { name: canary pods, type: kubernetes, workload: deployment/shop-canary }\n- { name: stable pods, type: kubernetes, workload: deployment/shop }',
      });
      expect(errors(step)).toEqual([]);
      expect(step.outputs.phase).toBe('promoted');
    }, 240_000);

    test('a crashing canary is aborted at the first step with the stable back at full capacity', async () => {
      const ns = 'canary-bad';
      await cluster.createNamespace(ns);
      await stable(ns, 'shop', 10);
      const step = await canary(ns, { image: 'registry.local/shop:crash-2' });
      expect(step.exitCode).toBe(1);
      expect(step.outputs.phase).toBe('aborted');
      const s = await get<Deployment>('deployment/shop', '-n', ns);
      expect([s.spec.replicas, s.spec.template.spec.containers[0]!.image]).toEqual([
        10,
        'registry.local/shop:v1',
      ]);
      const canaries = (
        await get<{ items: Deployment[] }>('deployments', '-n', ns, '-l', 'pipeline.dev/track=canary')
      ).items;
      expect(canaries.every((d) => d.spec.replicas === 0)).toBe(true);
    }, 240_000);

    test('split across jobs: set-weight to 50, then promote', async () => {
      const ns = 'canary-split';
      await cluster.createNamespace(ns);
      await stable(ns, 'shop', 4);
      const first = await canary(ns, { mode: 'set-weight', weight: '50', image: 'registry.local/shop:v2' });
      expect(errors(first)).toEqual([]);
      expect((await get<Deployment>('deployment/shop', '-n', ns)).spec.replicas).toBe(2);
      expect((await get<Deployment>('deployment/shop-canary', '-n', ns)).spec.replicas).toBe(2);
      const second = await canary(ns, { mode: 'promote', checks: '' });
      expect(errors(second)).toEqual([]);
      expect(second.outputs.phase).toBe('promoted');
      expect((await get<Deployment>('deployment/shop', '-n', ns)).spec.replicas).toBe(4);
    }, 240_000);
  });

  describe('blue-green-switch', () => {
    const blueGreen = async (ns: string, inputs: Record<string, string>) =>
      runBuiltAction('blue-green-switch', {
        inputs: {
          kubeconfig: await role('blue-green-switch', ns),
          namespace: ns,
          app: 'shop',
          'analysis-interval': '200ms',
          'analysis-count': '2',
          'scale-down-delay': '500ms',
          'fail-fast-after': '2s',
          timeout: '90s',
          ...inputs,
        },
        cwd: work,
        timeoutMs: 180_000,
      });
    const selector = async (ns: string) =>
      (await get<{ spec: { selector: Record<string, string> } }>('service/shop', '-n', ns)).spec.selector;

    test('deploys the idle colour, checks it, switches the Service, scales the old colour down; rollback goes back', async () => {
      const ns = 'bg-ok';
      await cluster.createNamespace(ns);
      await stable(ns, 'shop-blue', 3, 'app: shop, color: blue');
      const step = await blueGreen(ns, {
        image: 'registry.local/shop:v2',
        'pre-checks': '- { name: green pods, type: kubernetes, workload: deployment/shop-green }',
        'post-checks': '- { name: green pods, type: kubernetes, workload: deployment/shop-green }',
      });
      expect(errors(step)).toEqual([]);
      expect(await selector(ns)).toMatchObject({ color: 'green' });
      const green = await get<Deployment>('deployment/shop-green', '-n', ns);
      expect(green.spec.template.spec.containers[0]!.image).toBe('registry.local/shop:v2');
      expect((await get<Deployment>('deployment/shop-blue', '-n', ns)).spec.replicas).toBe(0);

      const back = await blueGreen(ns, { mode: 'rollback' });
      expect(errors(back)).toEqual([]);
      expect(await selector(ns)).toMatchObject({ color: 'blue' });
      expect((await get<Deployment>('deployment/shop-blue', '-n', ns)).spec.replicas).toBe(3);
    }, 240_000);

    test('an idle colour that crashes never gets the traffic: the live Service stays on blue', async () => {
      const ns = 'bg-bad';
      await cluster.createNamespace(ns);
      await stable(ns, 'shop-blue', 3, 'app: shop, color: blue');
      const step = await blueGreen(ns, {
        image: 'registry.local/shop:crash-3',
        'pre-checks': '- { name: green pods, type: kubernetes, workload: deployment/shop-green }',
      });
      expect(step.exitCode).toBe(1);
      expect(errors(step).join('\n')).toMatch(/CrashLoopBackOff|not available|failed/);
      expect(await selector(ns)).toMatchObject({ color: 'blue' });
      expect((await get<Deployment>('deployment/shop-blue', '-n', ns)).status.availableReplicas).toBe(3);
    }, 240_000);
  });
});
