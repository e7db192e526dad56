import { describe, expect, test } from '@jest/globals';
import { runBuiltAction, type StepResult } from '../../tooling/runners/action-runner.ts';
import { kubectlFor, useKubeSim, useWorkDir } from '../../tooling/test-support/fixtures.ts';

const sim = useKubeSim({
  timeScale: 40,
  namespaces: ['bg-switch', 'bg-back', 'bg-rerun', 'bg-inputs'],
  images: [{ pattern: '*:bad*', http: { status: 500 } }],
});
const work = useWorkDir('blue-green-');
const { kubectl, kubectlJson, kubectlApply } = kubectlFor(sim, work);

async function blueLive(ns: string, extra = ''): Promise<void> {
  await kubectlApply(
    ns,
    `apiVersion: apps/v1
kind: Deployment
metadata: { name: shop-blue, labels: { app: shop } }
spec:
  replicas: 3
  selector: { matchLabels: { app: shop, color: blue } }
  template:
    metadata: { labels: { app: shop, color: blue } }
    spec:
      containers:
        - name: web
          image: registry.local/shop:v1
---
apiVersion: v1
kind: Service
metadata: { name: shop }
spec:
  selector: { app: shop, color: blue }
  ports: [{ port: 80, targetPort: 8080 }]
${extra}`,
  );
  await kubectl('rollout', 'status', 'deployment/shop-blue', '-n', ns, '--timeout=60s');
}

const healthVia = (ns: string, service: string) =>
  `- { name: ${service} health, service: ${ns}/${service}:80, path: /health }`;

function blueGreen(
  ns: string,
  inputs: Record<string, string>,
  extra: { timeoutMs?: number; runAttempt?: string } = {},
) {
  return runBuiltAction('blue-green-switch', {
    inputs: {
      kubeconfig: sim.kubeconfigPath,
      namespace: ns,
      app: 'shop',
      'analysis-interval': '200ms',
      'analysis-count': '3',
      'scale-down-delay': '500ms',
      'fail-fast-after': '2s',
      timeout: '60s',
      ...inputs,
    },
    github: { runAttempt: extra.runAttempt ?? '1' },
    cwd: work,
    timeoutMs: extra.timeoutMs ?? 120_000,
  });
}

type Deployment = {
  spec: { replicas: number; template: { spec: { containers: { image: string }[] } } };
  status: { availableReplicas?: number };
};
type Service = {
  metadata: { annotations?: Record<string, string> };
  spec: { selector: Record<string, string> };
};
const errors = (step: StepResult) =>
  step.annotations.filter((a) => a.level === 'error').map((a) => a.message);
const selectorOf = async (ns: string, name: string) =>
  (await kubectlJson<Service>('get', `service/${name}`, '-n', ns)).spec.selector;
const replicasOf = async (ns: string, name: string) =>
  (await kubectlJson<Deployment>('get', `deployment/${name}`, '-n', ns)).spec.replicas;

describe('blue-green-switch against the embedded Kubernetes API', () => {
  test('deploys to the idle colour, checks it through the preview, switches, and scales the old colour down; rollback goes back', async () => {
    const ns = 'bg-switch';
    await blueLive(ns);
    const step = await blueGreen(ns, {
      image: 'registry.local/shop:v2',
      'pre-checks': healthVia(ns, 'shop-preview'),
      'post-checks': healthVia(ns, 'shop'),
    });
    expect(errors(step)).toEqual([]);
    expect(step.outputs).toEqual({
      'active-color': 'green',
      'previous-color': 'blue',
      switched: 'true',
      'rolled-back': 'false',
      'first-release': 'false',
      image: 'registry.local/shop:v2',
      revision: '1',
      reason: expect.stringContaining('shop serves registry.local/shop:v2 from green'),
    });
    expect(await selectorOf(ns, 'shop')).toEqual({ app: 'shop', color: 'green' });
    expect(await selectorOf(ns, 'shop-preview')).toEqual({ app: 'shop', color: 'blue' });
    const green = await kubectlJson<Deployment>('get', 'deployment/shop-green', '-n', ns);
    expect([green.spec.template.spec.containers[0]!.image, green.status.availableReplicas]).toEqual([
      'registry.local/shop:v2',
      3,
    ]);
    expect(await replicasOf(ns, 'shop-blue')).toBe(0);
    expect(step.summary).toContain('flowchart LR');
    expect(step.summary).toMatch(/before[\s\S]*after/);

    // The same image again: nothing to switch.
    const again = await blueGreen(ns, { image: 'registry.local/shop:v2' });
    expect(again.outputs).toMatchObject({
      'active-color': 'green',
      switched: 'false',
      'rolled-back': 'false',
    });

    // A rollback brings blue back up and puts the live Service on it.
    const back = await blueGreen(ns, { mode: 'rollback' });
    expect(errors(back)).toEqual([]);
    expect(back.outputs).toEqual({
      'active-color': 'blue',
      'previous-color': 'green',
      switched: 'true',
      'rolled-back': 'true',
      'first-release': 'false',
      image: 'registry.local/shop:v1',
      revision: '1',
      reason: 'shop is back on blue (registry.local/shop:v1); green was taken out',
    });
    expect(await selectorOf(ns, 'shop')).toEqual({ app: 'shop', color: 'blue' });
    expect(
      (await kubectlJson<Deployment>('get', 'deployment/shop-blue', '-n', ns)).status.availableReplicas,
    ).toBe(3);
    expect(await replicasOf(ns, 'shop-green')).toBe(0);
  });

  test('failed post-switch checks switch the live Service back at once', async () => {
    const ns = 'bg-back';
    await blueLive(ns);
    const step = await blueGreen(ns, {
      image: 'registry.local/shop:bad-2',
      // The pods come up fine (pre-switch passes); only real requests fail.
      'pre-checks': `- { name: green pods, type: kubernetes, workload: deployment/shop-green, namespace: ${ns} }`,
      'post-checks': healthVia(ns, 'shop'),
    });
    expect(step.exitCode).toBe(1);
    expect(errors(step).join('\n')).toMatch(/post-switch checks on green were failed: shop health failed/);
    expect(step.outputs).toEqual({
      'active-color': 'blue',
      'previous-color': 'green',
      switched: 'false',
      'rolled-back': 'true',
      'first-release': 'false',
      image: 'registry.local/shop:v1',
      revision: '1',
      reason: expect.stringMatching(/^post-switch checks on green were failed/),
    });
    expect(await selectorOf(ns, 'shop')).toEqual({ app: 'shop', color: 'blue' });
    expect(
      (await kubectlJson<Deployment>('get', 'deployment/shop-blue', '-n', ns)).status.availableReplicas,
    ).toBe(3);
    expect(await replicasOf(ns, 'shop-green')).toBe(0);
    const svc = await kubectlJson<Service>('get', 'service/shop', '-n', ns);
    expect(svc.metadata.annotations?.['pipeline.dev/bg-phase']).toBe('rolled-back');
    // Live traffic answers from blue again.
    const r = await fetch(`${sim.url}/api/v1/namespaces/${ns}/services/shop:80/proxy/`, {
      headers: { authorization: `Bearer ${sim.token}` },
    });
    expect([r.status, r.headers.get('x-kube-sim-image')]).toEqual([200, 'registry.local/shop:v1']);
  });

  test('a run killed during the post-switch checks is verified by the next run', async () => {
    const ns = 'bg-rerun';
    await blueLive(ns);
    let switchedSeen = false;
    const killed = await runBuiltAction('blue-green-switch', {
      inputs: {
        kubeconfig: sim.kubeconfigPath,
        namespace: ns,
        app: 'shop',
        image: 'registry.local/shop:v2',
        'analysis-interval': '200ms',
        'analysis-count': '500',
        'post-checks': healthVia(ns, 'shop'),
        'lock-lease': '1s',
      },
      cwd: work,
      timeoutMs: 6000,
      onStdout: (chunk) => {
        if (chunk.includes('shop now sends traffic to green')) switchedSeen = true;
      },
    });
    expect(killed.exitCode).not.toBe(0);
    expect(switchedSeen).toBe(true);
    const mid = await kubectlJson<Service>('get', 'service/shop', '-n', ns);
    expect(mid.metadata.annotations?.['pipeline.dev/bg-phase']).toBe('switched');
    expect(await replicasOf(ns, 'shop-blue')).toBe(3);

    const rerun = await blueGreen(
      ns,
      { image: 'registry.local/shop:v2', 'post-checks': healthVia(ns, 'shop'), 'lock-lease': '1s' },
      { runAttempt: '2' },
    );
    expect(errors(rerun)).toEqual([]);
    expect(rerun.log).toContain('did not finish verifying; verifying again');
    expect(rerun.outputs).toMatchObject({
      'active-color': 'green',
      'previous-color': 'blue',
      switched: 'true',
    });
    expect(await replicasOf(ns, 'shop-blue')).toBe(0);
  });

  test('bad inputs fail with one error naming the input, before anything changes', async () => {
    const ns = 'bg-inputs';
    await blueLive(
      ns,
      `---
apiVersion: v1
kind: Service
metadata: { name: plain }
spec:
  selector: { app: shop }
  ports: [{ port: 80 }]
---
apiVersion: v1
kind: Service
metadata: { name: headless }
spec:
  ports: [{ port: 80 }]
`,
    );
    const before = await kubectl('get', 'deployments,services', '-n', ns, '-o', 'yaml');
    const cases: [Record<string, string>, RegExp][] = [
      [{ image: '' }, /Input 'image' is required with mode deploy/],
      [
        { service: 'plain' },
        /Input 'service' names the Service plain, whose selector has no color: blue or green/,
      ],
      [{ service: 'headless' }, /Input 'service' names the Service headless, which has no selector/],
      [
        { app: 'nope', service: 'shop' },
        /Input 'app' names nope, but the live colour's Deployment nope-blue does not exist/,
      ],
      [
        { 'post-checks': '- { name: x, type: smoke }' },
        /Input 'post-checks\[0\] \(x\).type' has the unknown type "smoke"/,
      ],
      [{ 'scale-down-delay': 'soon' }, /Input 'scale-down-delay' has "soon", which is not a duration/],
    ];
    for (const [inputs, message] of cases) {
      const step = await blueGreen(ns, { image: 'registry.local/shop:v2', ...inputs });
      expect(step.exitCode).toBe(1);
      const errs = errors(step);
      expect(errs).toHaveLength(1);
      expect(errs[0]).toMatch(message);
    }
    expect(await kubectl('get', 'deployments,services', '-n', ns, '-o', 'yaml')).toBe(before);
  });
});
