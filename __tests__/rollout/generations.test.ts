import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { MemoryLogger } from '../../packages/core/index.ts';
import { LABEL_APP, LABEL_ENVIRONMENT, LABEL_MANAGED_BY } from '../../packages/kube/apply.ts';
import { KubeClient } from '../../packages/kube/client.ts';
import { pruneOlderGenerations } from '../../packages/rollout/generations.ts';
import { type KubeSim, startKubeSim } from '../../tooling/kube-sim/index.ts';

const ns = 'gen';
const ours = { [LABEL_MANAGED_BY]: 'pipeline', [LABEL_APP]: 'shop', [LABEL_ENVIRONMENT]: 'production' };
// kustomize's generator suffix alphabet: these are four generations of shop-settings.
const generation = (n: number) => `shop-settings-${'bcdfghkmt2'.slice(n) + 'bcdfghkmt2'.slice(0, n)}`;
const tls = (n: number) => `shop-tls-mt2345678${'bcdf'[n - 1]}`;

/** A pod template using one ConfigMap generation by envFrom and a Secret generation by volume. */
const template = (n: number) => ({
  metadata: { labels: { app: 'shop' } },
  spec: {
    containers: [{ name: 'web', image: 'shop:v1', envFrom: [{ configMapRef: { name: generation(n) } }] }],
    volumes: [{ name: 'tls', secret: { secretName: tls(n) } }],
  },
});

describe('pruning older generations of the configuration once a release is final', () => {
  let sim: KubeSim;
  let client: KubeClient;
  beforeAll(async () => {
    sim = await startKubeSim({ namespaces: [ns] });
    client = KubeClient.load({ kubeconfig: sim.kubeconfigPath });
    const create = (kind: 'configmaps' | 'secrets', name: string, labels: Record<string, string>) =>
      client.json('POST', `/api/v1/namespaces/${ns}/${kind}`, {
        body: {
          apiVersion: 'v1',
          kind: kind === 'configmaps' ? 'ConfigMap' : 'Secret',
          metadata: { name, labels },
          data: { A: kind === 'configmaps' ? name : 'eA==' },
        },
      });
    for (const n of [1, 2, 3, 4]) {
      await create('configmaps', generation(n), ours);
      await create('secrets', tls(n), ours);
    }
    // Not ours (no labels), of another family, or not generated: never pruned here.
    await create('configmaps', 'shop-settings-bbbbbbbbbb', {});
    await create('configmaps', 'flags-bcdfghkmt2', ours);
    await create('configmaps', 'shop-plain', ours);
  });
  afterAll(async () => {
    client?.close();
    await sim?.close();
  });

  const names = async (kind: string) =>
    (
      await client.json<{ items: { metadata: { name: string } }[] }>(
        'GET',
        `/api/v1/namespaces/${ns}/${kind}`,
      )
    ).items
      .map((i) => i.metadata.name)
      .sort();

  test('the live and the previous generation stay, older ones of the same family go, nothing else is touched', async () => {
    const log = new MemoryLogger();
    const pruned = await pruneOlderGenerations({
      client,
      namespace: ns,
      app: 'shop',
      environment: 'production',
      live: [template(4)],
      previous: [template(3)],
      logger: log,
    });
    expect(pruned.map((p) => `${p.kind}/${p.name}`).sort()).toEqual(
      [
        `ConfigMap/${generation(1)}`,
        `ConfigMap/${generation(2)}`,
        `Secret/${tls(1)}`,
        `Secret/${tls(2)}`,
      ].sort(),
    );
    expect(await names('configmaps')).toEqual(
      ['flags-bcdfghkmt2', generation(3), generation(4), 'shop-plain', 'shop-settings-bbbbbbbbbb'].sort(),
    );
    expect(await names('secrets')).toEqual([tls(3), tls(4)]);
    expect(log.records.map((r) => r.message)).toContain(
      `ConfigMap/${generation(1)} pruned: an older generation of its configuration`,
    );
  });

  test('other labels (another environment) keep theirs', async () => {
    const pruned = await pruneOlderGenerations({
      client,
      namespace: ns,
      app: 'shop',
      environment: 'staging',
      live: [template(4)],
      previous: [],
      logger: new MemoryLogger(),
    });
    expect(pruned).toEqual([]);
    expect(await names('configmaps')).toContain(generation(3));
  });
});
