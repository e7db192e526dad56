import { describe, expect, test } from '@jest/globals';
import { readmeRole } from '../../tooling/readme-roles.ts';
import { conformanceSuite, deployment, statusOf, type Target, until } from './harness.ts';

const suite = conformanceSuite('rollout-rbac', {
  timeScale: 20,
  images: [
    { pattern: '*:never-ready*', mode: 'never-ready' },
    { pattern: '*:gone*', mode: 'pull-error' },
  ],
});

const deployments = (t: Target, rest = '') => `/apis/apps/v1/namespaces/${t.namespace}/deployments${rest}`;

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

async function statusOfDeployment(t: Target, name: string) {
  const r = await t.call('GET', deployments(t, `/${name}`));
  const meta = r.body['metadata'] as { generation: number };
  const status = (r.body['status'] ?? {}) as Record<string, unknown> & { conditions?: Condition[] };
  return { generation: meta.generation, status };
}

/** Conditions without timestamps; ReplicaSet names differ by pod-template-hash, so they are masked. */
function conditions(cs: Condition[] | undefined) {
  return (cs ?? [])
    .map((c) => ({
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message.replace(/"[a-z0-9-]+-[a-z0-9]{6,10}"/, '"<rs>"'),
    }))
    .sort((a, b) => a.type.localeCompare(b.type));
}

async function rolledOut(t: Target, name: string) {
  return until(`${name} rolled out`, async () => {
    const { generation, status } = await statusOfDeployment(t, name);
    const done =
      status['observedGeneration'] === generation &&
      status['updatedReplicas'] === status['replicas'] &&
      status['availableReplicas'] === status['replicas'] &&
      (conditions(status.conditions).find((c) => c.type === 'Progressing')?.reason ?? '') ===
        'NewReplicaSetAvailable';
    return done ? status : undefined;
  });
}

describe('Deployment status and conditions', () => {
  test('a finished rollout has the real status fields and conditions', async () => {
    await suite.same(
      async (t) => {
        await t.call('POST', deployments(t), deployment('web'));
        const status = await rolledOut(t, 'web');
        const { conditions: cs, observedGeneration, ...counts } = status;
        return { counts, observedGeneration, conditions: conditions(cs as Condition[]) };
      },
      {
        counts: {
          replicas: 2,
          updatedReplicas: 2,
          readyReplicas: 2,
          availableReplicas: 2,
          terminatingReplicas: 0,
        },
        observedGeneration: 1,
        conditions: [
          {
            type: 'Available',
            status: 'True',
            reason: 'MinimumReplicasAvailable',
            message: 'Deployment has minimum availability.',
          },
          {
            type: 'Progressing',
            status: 'True',
            reason: 'NewReplicaSetAvailable',
            message: 'ReplicaSet "<rs>" has successfully progressed.',
          },
        ],
      },
    );
  });

  test('a rollout stuck on a never-ready image counts unavailable replicas from the ReplicaSets desired sizes', async () => {
    await suite.same(
      async (t) => {
        await t.call('POST', deployments(t), deployment('web'));
        await rolledOut(t, 'web');
        await t.kubectl([
          'set',
          'image',
          '-n',
          t.namespace,
          'deployment/web',
          'app=registry.example/app:never-ready',
        ]);
        const status = await until('surge pod created', async () => {
          const s = (await statusOfDeployment(t, 'web')).status;
          return s['replicas'] === 3 && s['updatedReplicas'] === 1 ? s : undefined;
        });
        // The Progressing reason is left out: NewReplicaSetCreated turns ReplicaSetUpdated on the
        // controller's next sync, which either side may or may not have reached here.
        const { conditions: _c, observedGeneration: _g, ...counts } = status;
        return { counts };
      },
      {
        counts: {
          replicas: 3,
          updatedReplicas: 1,
          readyReplicas: 2,
          availableReplicas: 2,
          unavailableReplicas: 1,
          terminatingReplicas: 0,
        },
      },
    );
  });

  // kube-sim only as an assertion: a real controller usually, but not always, answers within the
  // client's round trip; kube-sim holds its reconciles back so the lag is always there to see.
  test('a GET right after a PATCH shows observedGeneration behind generation (kube-sim only)', async () => {
    await suite.on(
      ['kube-sim'],
      async (t) => {
        await t.call('POST', deployments(t), deployment('web'));
        await rolledOut(t, 'web');
        // A wide window, so a loaded machine's slow round trip cannot outlast the default 10 ms.
        t.cluster.sim!.setControllerLatency(500);
        await t.call(
          'PATCH',
          deployments(t, '/web'),
          { spec: { replicas: 3 } },
          { type: 'application/merge-patch+json' },
        );
        const right = await statusOfDeployment(t, 'web');
        t.cluster.sim!.setControllerLatency(10);
        const later = await until('observed', async () => {
          const s = await statusOfDeployment(t, 'web');
          return s.status['observedGeneration'] === s.generation ? s : undefined;
        });
        return { right: [right.generation, right.status['observedGeneration']], later: later.generation };
      },
      { right: [2, 1], later: 2 },
    );
  });
});

describe('rollout with kubectl', () => {
  test('rollout status, history and undo print and do the same', async () => {
    await suite.same(
      async (t) => {
        const k = (args: string[]) => t.kubectl([...args, '-n', t.namespace]);
        await t.call('POST', deployments(t), deployment('web'));
        const first = await k(['rollout', 'status', 'deployment/web', '--timeout=60s']);
        await k(['set', 'image', 'deployment/web', 'app=registry.example/app:v2']);
        const second = await k(['rollout', 'status', 'deployment/web', '--timeout=60s']);
        const history = await k(['rollout', 'history', 'deployment/web']);
        const undo = await k(['rollout', 'undo', 'deployment/web']);
        await k(['rollout', 'status', 'deployment/web', '--timeout=60s']);
        const image = await k([
          'get',
          'deployment/web',
          '-o',
          'jsonpath={.spec.template.spec.containers[0].image}',
        ]);
        const revision = await k([
          'get',
          'deployment/web',
          '-o',
          "jsonpath={.metadata.annotations['deployment\\.kubernetes\\.io/revision']}",
        ]);
        const last = (s: string) => s.trim().split('\n').pop();
        return {
          first: [first.code, last(first.stdout)],
          second: [second.code, last(second.stdout)],
          history: history.stdout
            .trim()
            .split('\n')
            .map((l) => l.trim().split(/\s+/)),
          undo: undo.stdout.trim(),
          image: image.stdout,
          revision: revision.stdout,
        };
      },
      {
        first: [0, 'deployment "web" successfully rolled out'],
        second: [0, 'deployment "web" successfully rolled out'],
        history: [['deployment.apps/web'], ['REVISION', 'CHANGE-CAUSE'], ['1', '<none>'], ['2', '<none>']],
        undo: 'deployment.apps/web rolled back',
        image: 'registry.example/app:v1',
        revision: '3',
      },
    );
  }, 120_000);

  test('a pull error past the progress deadline: condition ProgressDeadlineExceeded and rollout status fails', async () => {
    await suite.same(
      async (t) => {
        await t.call(
          'POST',
          deployments(t),
          deployment('web', { progressDeadlineSeconds: 3 }, 'registry.example/app:gone'),
        );
        const r = await t.kubectl([
          'rollout',
          'status',
          'deployment/web',
          '-n',
          t.namespace,
          '--timeout=60s',
        ]);
        const { status } = await statusOfDeployment(t, 'web');
        return {
          code: r.code,
          stderr: r.stderr.trim(),
          progressing: conditions(status.conditions).find((c) => c.type === 'Progressing'),
        };
      },
      {
        code: 1,
        stderr: 'error: deployment "web" exceeded its progress deadline',
        progressing: {
          type: 'Progressing',
          status: 'False',
          reason: 'ProgressDeadlineExceeded',
          message: 'ReplicaSet "<rs>" has timed out progressing.',
        },
      },
    );
  }, 120_000);
});

describe('RBAC for the Roles our READMEs document', () => {
  const asks: [string, string][] = [
    ['get', 'deployments.apps'],
    ['list', 'deployments.apps'],
    ['watch', 'deployments.apps'],
    ['create', 'deployments.apps'],
    ['patch', 'deployments.apps'],
    ['update', 'deployments.apps'],
    ['delete', 'deployments.apps'],
    ['patch', 'deployments.apps/scale'],
    ['list', 'replicasets.apps'],
    ['get', 'pods'],
    ['list', 'pods'],
    ['watch', 'pods'],
    ['get', 'pods/log'],
    ['get', 'services/proxy'],
    ['create', 'services/proxy'],
    ['get', 'pods/proxy'],
    ['get', 'services'],
    ['patch', 'services'],
    ['list', 'secrets'],
    ['get', 'secrets'],
    ['create', 'configmaps'],
    ['list', 'events'],
    ['create', 'leases.coordination.k8s.io'],
    ['update', 'leases.coordination.k8s.io'],
    ['list', 'leases.coordination.k8s.io'],
    ['get', 'ingresses.networking.k8s.io'],
    ['list', 'namespaces'],
  ];

  test.each(['deploy-env', 'health-gate', 'canary-shift', 'blue-green-switch'])(
    '%s: kubectl auth can-i answers the same for every verb our actions use',
    async (action) => {
      const answers: Record<string, string[]> = {};
      await suite.same(async (t) => {
        const kubeconfig = await t.cluster.kubeconfigFor({
          namespace: t.namespace,
          name: action,
          rules: readmeRole(action),
        });
        const out = await Promise.all(
          asks.map(async ([verb, resource]) => {
            const r = await t.kubectl(['auth', 'can-i', verb, resource, '-n', t.namespace], { kubeconfig });
            return `${verb} ${resource}: ${r.stdout.trim()}`;
          }),
        );
        answers[t.kind] = out;
        return out.length;
      }, asks.length);
      if (answers['real'] && answers['kube-sim']) expect(answers['kube-sim']).toEqual(answers['real']);
      for (const out of Object.values(answers)) {
        expect(out).toContain('get deployments.apps: yes');
        expect(out).toContain('list namespaces: no');
      }
    },
    60_000,
  );

  test('kubectl auth can-i --list shows the same rules for the health-gate Role', async () => {
    const lists: Record<string, string[]> = {};
    await suite.same(
      async (t) => {
        const kubeconfig = await t.cluster.kubeconfigFor({
          namespace: t.namespace,
          name: 'lister',
          rules: readmeRole('health-gate'),
        });
        const r = await t.kubectl(['auth', 'can-i', '--list', '-n', t.namespace], { kubeconfig });
        lists[t.kind] = r.stdout
          .trim()
          .split('\n')
          .map((l) => l.trim().split(/\s+/).join(' '))
          .sort();
        return {
          code: r.code,
          granted: lists[t.kind]!.filter((l) => /^(deployments\.apps|pods|services\/proxy) /.test(l)),
        };
      },
      {
        code: 0,
        granted: ['deployments.apps [] [] [get]', 'pods [] [] [list]', 'services/proxy [] [] [get create]'],
      },
    );
    if (lists['real'] && lists['kube-sim']) expect(lists['kube-sim']).toEqual(lists['real']);
  });

  test('a health-gate token deleting a Deployment gets the real 403', async () => {
    await suite.same(
      async (t) => {
        await t.call('POST', deployments(t), deployment('web'));
        const kubeconfig = await t.cluster.kubeconfigFor({
          namespace: t.namespace,
          name: 'gate',
          rules: readmeRole('health-gate'),
        });
        const token = /token: (\S+)/.exec((await import('node:fs')).readFileSync(kubeconfig, 'utf8'))![1]!;
        const r = await t.call('DELETE', deployments(t, '/web'), undefined, { token });
        const s = statusOf(r);
        return {
          ...s,
          message: String(s.message).replace(t.namespace, '<ns>').replace(t.namespace, '<ns>'),
          details: r.body['details'],
        };
      },
      {
        code: 403,
        reason: 'Forbidden',
        message:
          'deployments.apps "web" is forbidden: User "system:serviceaccount:<ns>:gate" cannot delete resource "deployments" in API group "apps" in the namespace "<ns>"',
        details: { name: 'web', group: 'apps', kind: 'deployments' },
      },
    );
  });
});
