import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { runBuiltAction, type StepResult } from '../../tooling/runners/action-runner.ts';
import { deploymentYaml, kubectlFor, useKubeSim, useWorkDir } from '../../tooling/test-support/fixtures.ts';

const sim = useKubeSim({
  timeScale: 20,
  images: [
    { pattern: '*:crash*', mode: 'crash', crashAfterMs: 500 },
    { pattern: '*:slower*', startupMs: 40_000, readyMs: 2000 },
  ],
});
const work = useWorkDir('deploy-env-hardening-');
const { kubectl } = kubectlFor(sim, work);

function app(dir: string, name: string, image: string, extra = ''): string {
  const path = join(work, dir);
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, 'app.yaml'), `${deploymentYaml({ name, image })}${extra}`);
  return path;
}

function deploy(inputs: Record<string, string>, runId = '1'): Promise<StepResult> {
  return runBuiltAction('deploy-env', {
    github: { runId },
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
    // The request and its status are said once, not again inside the message of the last attempt.
    expect(stuck.outputs.failure!.match(/HTTP 503/g)).toHaveLength(1);
    // The reason output is what the reusable workflow hands notify for Slack.
    expect(stuck.outputs.reason).toMatch(/^NOT ROLLED BACK: /);
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

describe('one lock per Deployment', () => {
  const SERVICE = `---
apiVersion: v1
kind: Service
metadata: { name: duo }
spec:
  selector: { app: duo }
  ports: [{ port: 80, targetPort: 8080 }]
`;
  const canary = (runId: string, image: string, extra: Record<string, string> = {}) =>
    runBuiltAction('canary-shift', {
      inputs: {
        ...extra,
        kubeconfig: sim.kubeconfigPath,
        namespace: 'duo-dev',
        deployment: 'duo',
        image,
        steps: '50,100',
        'analysis-interval': '200ms',
        'analysis-count': '2',
        'fail-fast-after': '2s',
        timeout: '60s',
        checks: '- { name: canary health, service: duo-dev/duo-canary:80, path: /health }',
      },
      github: { runId },
      cwd: work,
      timeoutMs: 180_000,
    });
  const leaseHolder = () =>
    (
      sim.peek('Lease', 'duo-dev', 'pipeline-rollout-duo') as
        | { spec?: { holderIdentity?: string } }
        | undefined
    )?.spec?.holderIdentity;
  const untilHeldBy = async (runId: string) => {
    while (!leaseHolder()?.includes(`#${runId}.`)) await new Promise((r) => setTimeout(r, 10));
  };

  test('a deploy and a canary of the same Deployment exclude each other, whichever starts first', async () => {
    const base = { environment: 'dev', app: 'duo', namespace: 'duo-dev' };
    const first = await deploy(
      { ...base, manifests: app('duo1', 'duo', 'registry.local/duo:v1', SERVICE) },
      '2000',
    );
    expect(errors(first)).toEqual([]);

    // deploy-env holds the Deployment's lock through a slow rollout: the canary waits for it.
    const deploying = deploy(
      { ...base, manifests: app('duo2', 'duo', 'registry.local/duo:slower-2', SERVICE) },
      '2001',
    );
    await untilHeldBy('2001');
    const waiting = canary('2002', 'registry.local/duo:v3');
    const [d, c] = await Promise.all([deploying, waiting]);
    expect(errors(d)).toEqual([]);
    expect(errors(c)).toEqual([]);
    expect(c.stdout).toMatch(/Waiting for the deploy lock duo-dev\/pipeline-rollout-duo, held by .*#2001\./);

    // The canary holds the lock: a deploy of the same Deployment waits for it.
    const shifting = canary('2003', 'registry.local/duo:slower-4');
    await untilHeldBy('2003');
    const blocked = await deploy(
      { ...base, manifests: app('duo5', 'duo', 'registry.local/duo:v5', SERVICE) },
      '2004',
    );
    const shifted = await shifting;
    expect(errors(shifted)).toEqual([]);
    expect(errors(blocked)).toEqual([]);
    expect(blocked.stdout).toMatch(
      /Waiting for the deploy lock duo-dev\/pipeline-rollout-duo, held by .*#2003\./,
    );
    expect(imageOf('duo-dev', 'duo')).toBe('registry.local/duo:v5');
    expect(sim.peek('Lease', 'duo-dev', 'pipeline-rollout-duo')).toBeUndefined();
  });

  test('canary-shift and blue-green-switch refuse an image that is not a reference before touching the cluster', async () => {
    const before = JSON.stringify(sim.peek('Deployment', 'duo-dev', 'duo'));
    const c = await canary('2100', 'ghcr.io/acme/shop:v2;id');
    const b = await runBuiltAction('blue-green-switch', {
      inputs: {
        kubeconfig: sim.kubeconfigPath,
        namespace: 'duo-dev',
        app: 'duo',
        mode: 'deploy',
        image: 'ghcr.io/acme/shop:v2;id',
      },
      cwd: work,
      timeoutMs: 60_000,
    });
    for (const step of [c, b]) {
      expect(step.exitCode).toBe(1);
      expect(errors(step)).toEqual([
        expect.stringMatching(
          /^Input 'image' has "ghcr\.io\/acme\/shop:v2;id", which is not an image reference/,
        ),
      ]);
    }
    expect(before).toContain('registry.local/duo:v5');
    expect(JSON.stringify(sim.peek('Deployment', 'duo-dev', 'duo'))).toBe(before);
    expect(sim.peek('Deployment', 'duo-dev', 'duo-canary')).toBeUndefined();
  });

  test("canary-shift's overlay may not touch kube-system or anything cluster-scoped", async () => {
    const before = JSON.stringify(sim.peek('Deployment', 'duo-dev', 'duo'));
    const kubeSystem = JSON.stringify(sim.peek('Namespace', undefined, 'kube-system'));
    const step = await canary('2200', 'registry.local/duo:v6', {
      manifests: app(
        'duo-ns',
        'duo',
        'registry.local/duo:v1',
        `${SERVICE}---\napiVersion: v1\nkind: Namespace\nmetadata: { name: kube-system, labels: { owned: "yes" } }\n`,
      ),
    });
    expect(step.exitCode).toBe(1);
    expect(errors(step)).toEqual([
      expect.stringMatching(/Namespace\/kube-system is one of the cluster's own namespaces/),
    ]);
    expect(JSON.stringify(sim.peek('Namespace', undefined, 'kube-system'))).toBe(kubeSystem);
    expect(JSON.stringify(sim.peek('Deployment', 'duo-dev', 'duo'))).toBe(before);
  });
});

/** Nine levels of nine aliases: a few hundred bytes that expand to 387 million strings. */
const ALIAS_BOMB = (() => {
  const lines = [
    'apiVersion: v1',
    'kind: ConfigMap',
    'metadata: { name: bomb }',
    'data:',
    '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  ];
  let previous = 'a';
  for (const n of 'bcdefghi') {
    lines.push(`  ${n}: &${n} [${Array(9).fill(`*${previous}`).join(',')}]`);
    previous = n;
  }
  return `${lines.join('\n')}\n`;
})();

describe('hostile input fails with one clean error, and nothing changes in the cluster', () => {
  let outside: string;
  beforeAll(() => {
    outside = mkdtempSync(join(tmpdir(), 'outside-workspace-'));
    writeFileSync(join(outside, 'app.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: stolen }\n');
    writeFileSync(join(outside, 'kustomization.yaml'), 'resources:\n  - app.yaml\n');
    symlinkSync(outside, join(work, 'linked'));
  });
  afterAll(() => rmSync(outside, { recursive: true, force: true }));

  const noStack = (step: StepResult) => {
    expect(`${step.stdout}\n${step.stderr}`).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/);
  };
  const file = (dir: string, name: string, content: string) => {
    const path = join(work, dir);
    mkdirSync(path, { recursive: true });
    writeFileSync(join(path, name), content);
    return dir;
  };
  const inNamespace = async (ns: string) =>
    kubectl('get', 'namespace', ns).then(
      () => true,
      () => false,
    );

  const deployment = (name: string, replicas: string, image: string, annotations = '') =>
    `apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}${annotations ? `, annotations: { ${annotations} }` : ''} }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec: { containers: [{ name: web, image: "${image}" }] }
`;

  test.each<[string, () => Record<string, string>, RegExp]>([
    [
      'an alias bomb in plain manifests',
      () => ({ manifests: file('bomb', 'bomb.yaml', ALIAS_BOMB) }),
      /^bomb\/bomb\.yaml \(document 1\): YAML aliases expand more than 100 times \(an alias bomb\?\)/,
    ],
    [
      'an alias bomb through a kustomize overlay',
      () => {
        file('kbomb', 'bomb.yaml', ALIAS_BOMB);
        return { kustomize: file('kbomb', 'kustomization.yaml', 'resources:\n  - bomb.yaml\n') };
      },
      /^Input 'kustomize' names "kbomb", whose rendering was stopped: it used more than 1024 MiB of memory/,
    ],
    [
      'replicas input past any int',
      () => ({
        manifests: file('r1', 'd.yaml', deployment('r1', '2', 'registry.local/r:v1')),
        replicas: '99999999999999999999',
      }),
      /^Input 'replicas' has "99999999999999999999", with a count over 10000\. Accepted: whole numbers from 0 to 10000/,
    ],
    [
      'replicas input past int32',
      () => ({
        manifests: file('r2', 'd.yaml', deployment('r2', '2', 'registry.local/r:v1')),
        replicas: 'r2=2147483648',
      }),
      /^Input 'replicas' has "r2=2147483648", with a count for r2 over 10000/,
    ],
    [
      'replicas in a manifest past any int',
      () => ({
        manifests: file('r3', 'd.yaml', deployment('r3', '99999999999999999999', 'registry.local/r:v1')),
      }),
      /^r3\/d\.yaml \(document 1\): Deployment\/r3 has spec\.replicas 100000000000000000000; accepted: a whole number from 0 to 10000/,
    ],
    [
      'an image input with a shell metacharacter',
      () => ({
        manifests: file('i1', 'd.yaml', deployment('i1', '1', 'ghcr.io/acme/shop:v1')),
        image: 'ghcr.io/acme/shop:v2;id',
      }),
      /^Input 'image' has "ghcr\.io\/acme\/shop:v2;id", which is not an image reference\. Accepted: an image reference/,
    ],
    [
      'an image input with a short digest',
      () => ({
        manifests: file('i2', 'd.yaml', deployment('i2', '1', 'ghcr.io/acme/shop:v1')),
        image: 'ghcr.io/acme/shop@sha256:abc123abc123abc123abc123abc123abc123',
      }),
      /^Input 'image' has .*, which has a sha256 digest that is not 64 lowercase hex digits/,
    ],
    [
      'a manifest image that is not a reference',
      () => ({ manifests: file('i3', 'd.yaml', deployment('i3', '1', 'ghcr.io/acme/shop:v2;id')) }),
      /^i3\/d\.yaml \(document 1\): Deployment\/i3: container "web" has the image "ghcr\.io\/acme\/shop:v2;id", which is not an image reference/,
    ],
    [
      'a 10 MB ConfigMap',
      () => ({
        manifests: file(
          'big',
          'cm.yaml',
          `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: big }\ndata:\n  blob: "${'x'.repeat(10 * 1024 * 1024)}"\n`,
        ),
      }),
      /^big\/cm\.yaml \(document 1\): ConfigMap\/big is 10\.0 MiB; the API server refuses objects over 1\.0 MiB/,
    ],
    [
      'annotations over 256 KiB',
      () => ({
        manifests: file(
          'ann',
          'd.yaml',
          deployment('ann', '1', 'registry.local/a:v1', `note: "${'y'.repeat(300 * 1024)}"`),
        ),
      }),
      /^ann\/d\.yaml \(document 1\): Deployment\/ann: its annotations take 301 KiB; the API server refuses more than 256 KiB in all/,
    ],
    [
      'a Namespace kube-system manifest',
      () => ({
        manifests: file(
          'ks',
          'ns.yaml',
          'apiVersion: v1\nkind: Namespace\nmetadata: { name: kube-system, labels: { owned: "yes" } }\n',
        ),
        'cluster-scoped-kinds': 'Namespace',
      }),
      /^ks\/ns\.yaml \(document 1\): Namespace\/kube-system is one of the cluster's own namespaces/,
    ],
    [
      'a cluster-scoped kind not listed',
      () => ({
        manifests: file(
          'cr',
          'cr.yaml',
          'apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: { name: everything }\nrules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }]\n',
        ),
      }),
      /^cr\/cr\.yaml \(document 1\): ClusterRole\/everything is cluster-scoped, and this deploy changes only namespace hostile-dev; .*cluster-scoped-kinds/,
    ],
    [
      'an object for another namespace',
      () => ({
        manifests: file(
          'other',
          'cm.yaml',
          'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x, namespace: kube-system }\n',
        ),
      }),
      /^other\/cm\.yaml \(document 1\): ConfigMap\/x is in namespace kube-system, but this deploy targets hostile-dev/,
    ],
    [
      'the namespace default',
      () => ({
        manifests: file('def', 'cm.yaml', 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n'),
        namespace: 'default',
      }),
      /^Input 'namespace' is "default", which deploys never touch/,
    ],
    [
      'manifests outside the workspace by ../',
      () => ({ manifests: `../${outside.split('/').pop()}/app.yaml` }),
      /^Input 'manifests' names "\.\.\/outside-workspace-\w+\/app\.yaml", which is outside the workspace .*Accepted: paths inside the workspace; set allow-paths-outside-workspace: true/,
    ],
    [
      'manifests by an absolute path',
      () => ({ manifests: join(outside, 'app.yaml') }),
      /^Input 'manifests' names ".*outside-workspace-\w+\/app\.yaml", which is outside the workspace/,
    ],
    [
      'manifests through a symlink that leaves the workspace',
      () => ({ manifests: 'linked/app.yaml' }),
      /^Input 'manifests' names "linked\/app\.yaml", which is a symlink that resolves outside the workspace/,
    ],
    [
      'a kustomize overlay outside the workspace',
      () => ({ kustomize: outside }),
      /^Input 'kustomize' names ".*outside-workspace-\w+", which is outside the workspace/,
    ],
  ])('%s', async (_what, inputs, message) => {
    const before = JSON.stringify(sim.peek('Namespace', undefined, 'kube-system'));
    const step = await deploy({ environment: 'dev', app: 'hostile', namespace: 'hostile-dev', ...inputs() });
    expect(step.exitCode).toBe(1);
    expect(errors(step)).toHaveLength(1);
    expect(errors(step)[0]).toMatch(message);
    noStack(step);
    expect(await inNamespace('hostile-dev')).toBe(false);
    expect(JSON.stringify(sim.peek('Namespace', undefined, 'kube-system'))).toBe(before);
  });

  test('listed cluster-scoped kinds and allowed outside paths are applied', async () => {
    const step = await deploy({
      environment: 'dev',
      app: 'allowed',
      namespace: 'allowed-dev',
      manifests: [
        file(
          'crok',
          'cr.yaml',
          'apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: { name: allowed-reader }\nrules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }]\n',
        ),
        join(outside, 'app.yaml'),
      ].join('\n'),
      'cluster-scoped-kinds': 'ClusterRole',
      'allow-paths-outside-workspace': 'true',
    });
    expect(errors(step)).toEqual([]);
    expect(sim.peek('ClusterRole', undefined, 'allowed-reader')).toBeDefined();
    expect(sim.peek('ConfigMap', 'allowed-dev', 'stolen')).toBeDefined();
  });

  test('run-migrations refuses a migrations dir outside the workspace before connecting', async () => {
    const step = await runBuiltAction('run-migrations', {
      inputs: {
        command: 'status',
        dir: outside,
        'database-url': 'postgres://migrator:hunter2secret@127.0.0.1:1/db',
      },
      cwd: work,
      env: { GITHUB_WORKSPACE: work },
      timeoutMs: 60_000,
    });
    expect(step.exitCode).toBe(1);
    expect(errors(step)).toEqual([
      expect.stringMatching(/^Input 'dir' names ".*outside-workspace-\w+", which is outside the workspace/),
    ]);
  });
});
