import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { InputError, MemoryLogger } from '../../packages/core/index.ts';
import { KubeClient } from '../../packages/kube/client.ts';
import { annotationState, runStrategy, type StrategyCommon } from '../../packages/rollout/strategy.ts';
import { type KubeSim, startKubeSim } from '../../tooling/kube-sim/index.ts';

const ns = 'skeleton';
const leasePath = `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/pipeline-rollout-shop`;
const servicePath = `/api/v1/namespaces/${ns}/services/shop`;

describe('the strategy skeleton: validate, then the lock, then resume, then the mode', () => {
  let sim: KubeSim;
  let client: KubeClient;
  let common: StrategyCommon;
  beforeAll(async () => {
    sim = await startKubeSim({ namespaces: [ns] });
    client = KubeClient.load({ kubeconfig: sim.kubeconfigPath });
    common = {
      client,
      namespace: ns,
      timeoutMs: 10_000,
      stuckGraceMs: 1000,
      lock: { holder: 'run-1', waitTimeoutMs: 5000, leaseDurationMs: 15_000 },
      logger: new MemoryLogger(),
    };
    await client.json('POST', `/api/v1/namespaces/${ns}/services`, {
      body: {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'shop' },
        spec: { ports: [{ port: 80 }] },
      },
    });
  });
  afterAll(async () => {
    client?.close();
    await sim?.close();
  });

  const holder = async () =>
    (await client.getJson<{ spec: { holderIdentity?: string } }>(leasePath))?.spec.holderIdentity;

  test('an input refused by validation takes no lock and runs no mode', async () => {
    const seen: string[] = [];
    await expect(
      runStrategy(common, 'go', {
        validate: async () => {
          throw new InputError('image', 'is required with mode go', 'an image');
        },
        locks: () => ['shop'],
        resume: async () => {
          seen.push('resume');
          return undefined;
        },
        modes: { go: async () => seen.push('go') },
      }),
    ).rejects.toThrow("Input 'image' is required with mode go");
    expect(seen).toEqual([]);
    expect(await holder()).toBeUndefined();
  });

  test('resume and the mode run under the Lease of the Deployments named, released afterwards', async () => {
    const seen: string[] = [];
    const result = await runStrategy(common, 'go', {
      validate: async () => {
        seen.push(`validate:${(await holder()) ?? 'unlocked'}`);
        return { name: 'shop' };
      },
      locks: (c) => [c.name],
      resume: async () => {
        seen.push(`resume:${await holder()}`);
        return undefined;
      },
      modes: {
        go: async () => {
          seen.push(`go:${await holder()}`);
          return 'went';
        },
      },
    });
    expect(result).toBe('went');
    expect(seen).toEqual(['validate:unlocked', 'resume:run-1', 'go:run-1']);
    expect(await holder()).toBeUndefined();
  });

  test("a resume that finishes a killed runner's work ends the run without the mode", async () => {
    const seen: string[] = [];
    const result = await runStrategy(common, 'go', {
      validate: async () => ({}),
      locks: () => ['shop'],
      resume: async () => 'finished the switch left half-done',
      modes: {
        go: async () => {
          seen.push('go');
          return 'went';
        },
      },
    });
    expect(result).toBe('finished the switch left half-done');
    expect(seen).toEqual([]);
  });

  test('state kept in annotations: written in one patch, read back by key, removed with null', async () => {
    const store = annotationState(client, servicePath, {
      phase: 'pipeline.dev/x-phase',
      image: 'pipeline.dev/x-image',
    });
    await store.save({ phase: 'switched', image: 'shop:v2' });
    const read = async () =>
      store.read(
        (await client.getJson<{ metadata: { annotations?: Record<string, string> } }>(servicePath))!.metadata
          .annotations,
      );
    expect(await read()).toEqual({ phase: 'switched', image: 'shop:v2' });
    await store.save({ image: null });
    expect(await read()).toEqual({ phase: 'switched' });
  });
});
