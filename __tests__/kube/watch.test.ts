/**
 * watchUntil against kube-sim: the answer from the list, a change through the watch, a relist
 * after 410 Gone, a relist after API faults on the list, the deadline and cancellation.
 */
import { afterAll, beforeAll, beforeEach, expect, test } from '@jest/globals';
import { type Logger, silentLogger } from '../../packages/core/index.ts';
import { KubeClient, loadKubeConfig } from '../../packages/kube/client.ts';
import type { KubeObject } from '../../packages/kube/resources.ts';
import { watchUntil } from '../../packages/kube/watch.ts';
import { type KubeSim, startKubeSim } from '../../tooling/kube-sim/index.ts';

const NS = 'watch';
let sim: KubeSim;
let client: KubeClient;
/** With the client's own retries: a dropped watch resumes from its resourceVersion by itself. */
let retrying: KubeClient;
let counter = 0;

beforeAll(async () => {
  sim = await startKubeSim({ namespaces: [NS] });
  // One attempt per request: the faults below reach watchUntil instead of the client's own retries.
  client = new KubeClient(loadKubeConfig({ kubeconfig: sim.kubeconfig }), { attempts: 1 });
  retrying = new KubeClient(loadKubeConfig({ kubeconfig: sim.kubeconfig }));
});
afterAll(async () => {
  client?.close();
  retrying?.close();
  await sim?.close();
});
beforeEach(() => sim.setFaults({}));

const configMaps = `/api/v1/namespaces/${NS}/configmaps`;
/** A logger that keeps watchUntil's debug lines: why it listed again. */
function recorder(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { ...silentLogger, debug: (m: string) => lines.push(m), lines };
}
const create = (name: string, data: Record<string, string> = {}) =>
  client.json('POST', configMaps, {
    body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data },
  });
const fresh = () => `cm-${++counter}`;

test('a condition that holds on the list answers without watching', async () => {
  const name = fresh();
  await create(name, { ready: 'yes' });
  const outcome = await watchUntil<KubeObject, string>({
    client,
    path: configMaps,
    condition: (objects, change) => (objects.has(name) && !change ? 'from the list' : undefined),
  });
  expect(outcome).toEqual({ state: 'done', value: 'from the list' });
});

test('a change after the list arrives through the watch, with its type', async () => {
  const name = fresh();
  const waiting = watchUntil<KubeObject, string>({
    client,
    path: configMaps,
    fieldSelector: `metadata.name=${name}`,
    condition: (objects, change) => (objects.has(name) ? change?.type : undefined),
  });
  await new Promise((r) => setTimeout(r, 200));
  await create(name);
  expect(await waiting).toEqual({ state: 'done', value: 'ADDED' });
});

test('a watch that falls behind the history (410 Gone) lists again and still sees the change', async () => {
  const name = fresh();
  const logger = recorder();
  const stop = new AbortController();
  let lists = 0;
  const waiting = watchUntil<KubeObject, true>({
    client: retrying,
    path: configMaps,
    logger,
    signal: stop.signal,
    condition: (objects, change) => {
      if (!change) lists++;
      return objects.has(name) ? true : undefined;
    },
  });
  try {
    await new Promise((r) => setTimeout(r, 200));
    // The stream drops and cannot come back at once; meanwhile the history it would resume from is compacted.
    sim.setFaults({
      failNext: 1,
      statuses: [503],
      retryAfterSeconds: 0,
      match: { verb: 'watch', resource: 'configmaps' },
    });
    sim.dropWatches();
    await new Promise((r) => setTimeout(r, 100));
    await create(fresh());
    sim.compactHistory();
    for (let i = 0; lists < 2 && i < 50; i++) await new Promise((r) => setTimeout(r, 100));
    expect(lists).toBe(2);
    expect(logger.lines.some((l) => l.includes('410 Gone, listing again'))).toBe(true);
    await create(name);
    expect(await waiting).toEqual({ state: 'done', value: true });
  } finally {
    stop.abort();
  }
});

test('API faults on the list are retried with backoff', async () => {
  const name = fresh();
  await create(name);
  sim.setFaults({
    failNext: 2,
    statuses: [503],
    retryAfterSeconds: 0,
    match: { verb: 'list', resource: 'configmaps' },
  });
  const logger = recorder();
  const outcome = await watchUntil<KubeObject, true>({
    client,
    path: configMaps,
    logger,
    condition: (objects) => (objects.has(name) ? true : undefined),
  });
  expect(outcome).toEqual({ state: 'done', value: true });
  expect(logger.lines.filter((l) => /failed \(.*503.*\); listing again in \d+ ms/.test(l))).toHaveLength(2);
});

test('an answer that never comes ends at the deadline; an abort ends it as aborted', async () => {
  const never = () => undefined;
  const started = Date.now();
  expect(
    await watchUntil({ client, path: configMaps, condition: never, deadline: Date.now() + 500 }),
  ).toEqual({
    state: 'deadline',
  });
  expect(Date.now() - started).toBeGreaterThanOrEqual(450);
  const abort = new AbortController();
  setTimeout(() => abort.abort(), 200);
  expect(await watchUntil({ client, path: configMaps, condition: never, signal: abort.signal })).toEqual({
    state: 'aborted',
  });
});

test('a refusal (403) is thrown, not retried', async () => {
  sim.setFaults({ failNext: 1, statuses: [403], match: { verb: 'list', resource: 'configmaps' } });
  await expect(watchUntil({ client, path: configMaps, condition: () => true })).rejects.toThrow(/403/);
});
