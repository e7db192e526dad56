/** updateObject: read, change, write back with the resourceVersion; a 409 reads again. */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { KubeApiError, KubeClient } from '../../packages/kube/client.ts';
import { updateObject } from '../../packages/kube/objects.ts';
import { type KubeSim, startKubeSim } from '../../tooling/kube-sim/index.ts';

interface ConfigMap {
  metadata: { name: string; resourceVersion?: string };
  data?: Record<string, string>;
}
const ns = 'upd';
const path = (name: string) => `/api/v1/namespaces/${ns}/configmaps/${name}`;

describe('updateObject', () => {
  let sim: KubeSim;
  let client: KubeClient;
  beforeAll(async () => {
    sim = await startKubeSim({ namespaces: [ns] });
    client = KubeClient.load({ kubeconfig: sim.kubeconfigPath });
    for (const name of ['a', 'b'])
      await client.json('POST', `/api/v1/namespaces/${ns}/configmaps`, {
        body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { n: '0' } },
      });
  });
  afterAll(async () => {
    client?.close();
    await sim?.close();
  });

  test('a write that conflicts with another writer reads again and keeps both changes', async () => {
    let reads = 0;
    // Someone else writes right after our first read: our first PUT carries a stale resourceVersion.
    const racing = {
      json: client.json.bind(client),
      async getJson<T>(p: string): Promise<T | undefined> {
        const read = await client.getJson<T>(p);
        if (++reads === 1)
          await client.json('PATCH', p, {
            body: { data: { other: 'yes' } },
            headers: { 'content-type': 'application/merge-patch+json' },
          });
        return read;
      },
    } as unknown as KubeClient;
    const written = await updateObject<ConfigMap>(racing, path('a'), (cm) => ({
      ...cm!,
      data: { ...cm!.data, n: String(Number(cm!.data?.n ?? 0) + 1) },
    }));
    const live = await client.getJson<ConfigMap>(path('a'));
    expect(live?.data).toEqual({ n: '1', other: 'yes' });
    expect(written?.data?.n).toBe('1');
    expect(reads).toBe(2);
  });

  test('a missing object is left to the caller; conflicts beyond the attempts are thrown', async () => {
    expect(await updateObject<ConfigMap>(client, path('missing'), (cm) => cm)).toBeUndefined();
    const stale = await client.getJson<ConfigMap>(path('b'));
    await client.json('PATCH', path('b'), {
      body: { data: { n: '1' } },
      headers: { 'content-type': 'application/merge-patch+json' },
    });
    // Always writing the stale copy: every attempt conflicts.
    const attempt = updateObject<ConfigMap>(client, path('b'), () => stale, 3);
    await expect(attempt).rejects.toBeInstanceOf(KubeApiError);
    await expect(attempt).rejects.toMatchObject({ status: 409 });
  });
});
