import { request } from 'node:https';
import { describe, expect, test } from '@jest/globals';
import { conformanceSuite, statusOf, type Target, until } from './harness.ts';

const suite = conformanceSuite('watch-delete', { timeScale: 20 });

interface WatchEvent {
  type: string;
  object: {
    kind?: string;
    metadata?: { name?: string; resourceVersion?: string; annotations?: Record<string, string> };
  } & Record<string, unknown>;
}

/** Opens a watch and collects its events until `done` says so (or the server ends it). */
function watch(
  t: Target,
  path: string,
  done: (events: WatchEvent[]) => boolean,
  ms = 15_000,
): Promise<WatchEvent[]> {
  return new Promise((resolve, reject) => {
    const events: WatchEvent[] = [];
    let buffer = '';
    const req = request(
      `${t.cluster.httpsUrl}${path}`,
      {
        ca: t.cluster.caCert,
        headers: { authorization: `Bearer ${t.cluster.token}`, accept: 'application/json' },
      },
      (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let nl = buffer.indexOf('\n');
          while (nl >= 0) {
            const line = buffer.slice(0, nl).trim();
            buffer = buffer.slice(nl + 1);
            if (line) events.push(JSON.parse(line) as WatchEvent);
            nl = buffer.indexOf('\n');
          }
          if (done(events)) {
            req.destroy();
            resolve(events);
          }
        });
        res.on('end', () => resolve(events));
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      resolve(events);
    }, ms);
    req.on('close', () => clearTimeout(timer));
    req.on('error', (e) => (e.message.includes('socket hang up') ? resolve(events) : reject(e)));
    req.end();
  });
}

const cms = (t: Target, q = '') => `/api/v1/namespaces/${t.namespace}/configmaps${q}`;
const names = (events: WatchEvent[]) => events.map((e) => `${e.type} ${e.object.metadata?.name ?? ''}`);

describe('watch', () => {
  test('a watch resumed from a list resourceVersion replays exactly the later changes, in order', async () => {
    await suite.same(
      async (t) => {
        await t.call('POST', cms(t), { metadata: { name: 'before' } });
        const list = await t.call('GET', cms(t));
        const rv = (list.body['metadata'] as { resourceVersion: string }).resourceVersion;
        await t.call('POST', cms(t), { metadata: { name: 'a' } });
        await t.call('PATCH', cms(t, '/a'), { data: { k: 'v' } }, { type: 'application/merge-patch+json' });
        await t.call('DELETE', cms(t, '/before'));
        const events = await watch(t, cms(t, `?watch=1&resourceVersion=${rv}`), (e) => e.length >= 3);
        return names(events);
      },
      ['ADDED a', 'MODIFIED a', 'DELETED before'],
    );
  });

  // kube-sim only: a real server keeps etcd history until its periodic compaction (5 minutes), so
  // an old resourceVersion cannot be made to expire on demand there; kube-sim compacts on request.
  test('a resourceVersion older than the history answers 410 Expired as an ERROR event (kube-sim only)', async () => {
    await suite.on(
      ['kube-sim'],
      async (t) => {
        await t.call('POST', cms(t), { metadata: { name: 'old' } });
        const list = await t.call('GET', cms(t));
        const rv = (list.body['metadata'] as { resourceVersion: string }).resourceVersion;
        await t.call('POST', cms(t), { metadata: { name: 'new' } });
        t.cluster.sim!.compactHistory();
        const events = await watch(t, cms(t, `?watch=true&resourceVersion=${rv}`), (e) => e.length >= 1);
        const first = events[0]!;
        return {
          type: first.type,
          kind: first.object.kind,
          code: first.object['code'],
          reason: first.object['reason'],
        };
      },
      { type: 'ERROR', kind: 'Status', code: 410, reason: 'Expired' },
    );
  });

  test('sendInitialEvents with bookmarks lists the current objects then marks the end with a bookmark', async () => {
    await suite.same(
      async (t) => {
        await t.call('POST', cms(t), { metadata: { name: 'x' } });
        await t.call('POST', cms(t), { metadata: { name: 'y' } });
        const events = await watch(
          t,
          cms(
            t,
            '?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&resourceVersion=',
          ),
          (e) => e.some((x) => x.type === 'BOOKMARK'),
        );
        const bookmark = events.find((e) => e.type === 'BOOKMARK')!;
        return {
          events: names(events.filter((e) => e.object.metadata?.name !== 'kube-root-ca.crt')),
          bookmark: [
            bookmark.object.kind,
            bookmark.object.metadata?.annotations,
            typeof bookmark.object.metadata?.resourceVersion,
          ],
        };
      },
      {
        events: ['ADDED x', 'ADDED y', 'BOOKMARK '],
        bookmark: ['ConfigMap', { 'k8s.io/initial-events-end': 'true' }, 'string'],
      },
    );
  });
});

describe('graceful deletion', () => {
  const pod = (name: string, grace?: number) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      containers: [{ name: 'app', image: 'registry.example/app:v1' }],
      ...(grace === undefined ? {} : { terminationGracePeriodSeconds: grace }),
    },
  });
  const runningPod = async (t: Target, name: string) => {
    await t.call('POST', `/api/v1/namespaces/${t.namespace}/pods`, pod(name, 45));
    await until(`pod ${name} running`, async () => {
      const r = await t.call('GET', `/api/v1/namespaces/${t.namespace}/pods/${name}`);
      return (r.body['status'] as { phase?: string } | undefined)?.phase === 'Running';
    });
  };

  test('deleting a running pod marks it with deletionTimestamp and its grace period; it is Terminating until it goes', async () => {
    await suite.same(
      async (t) => {
        await runningPod(t, 'web');
        const del = await t.call('DELETE', `/api/v1/namespaces/${t.namespace}/pods/web`);
        const meta = del.body['metadata'] as {
          deletionTimestamp?: string;
          deletionGracePeriodSeconds?: number;
        };
        const table = await t.kubectl(['get', 'pod', 'web', '-n', t.namespace, '--no-headers']);
        const gone = await until(
          'pod gone',
          async () => (await t.call('GET', `/api/v1/namespaces/${t.namespace}/pods/web`)).status === 404,
        );
        return {
          code: del.status,
          kind: del.body['kind'],
          grace: meta.deletionGracePeriodSeconds,
          hasTimestamp: typeof meta.deletionTimestamp,
          shown:
            table.stdout.includes('Terminating') || table.stdout === '' || table.stderr.includes('NotFound'),
          gone,
        };
      },
      { code: 200, kind: 'Pod', grace: 45, hasTimestamp: 'string', shown: true, gone: true },
    );
  });

  test('gracePeriodSeconds=0 deletes a pod at once; a pod never scheduled goes at once', async () => {
    await suite.same(
      async (t) => {
        await runningPod(t, 'now');
        const del = await t.call('DELETE', `/api/v1/namespaces/${t.namespace}/pods/now?gracePeriodSeconds=0`);
        const after = await t.call('GET', `/api/v1/namespaces/${t.namespace}/pods/now`);
        return { code: del.status, after: after.status };
      },
      { code: 200, after: 404 },
    );
  });

  test('a deleted namespace is Terminating, refuses new content with 403, and goes once emptied', async () => {
    await suite.same(
      async (t) => {
        await runningPod(t, 'tenant');
        const del = await t.call('DELETE', `/api/v1/namespaces/${t.namespace}`);
        const phase = (del.body['status'] as { phase?: string } | undefined)?.phase;
        const create = await t.call('POST', cms(t), { metadata: { name: 'late' } });
        await until(
          'namespace gone',
          async () => (await t.call('GET', `/api/v1/namespaces/${t.namespace}`)).status === 404,
          90_000,
        );
        return { code: del.status, phase, create: statusOf(create) };
      },
      {
        code: 200,
        phase: 'Terminating',
        create: {
          code: 403,
          reason: 'Forbidden',
          message: expect.stringMatching(
            /^configmaps "late" is forbidden: unable to create new content in namespace c\d+-\d+ because it is being terminated$/,
          ),
          causes: [
            {
              reason: 'NamespaceTerminating',
              message: expect.stringMatching(/^namespace c\d+-\d+ is being terminated$/),
              field: 'metadata.namespace',
            },
          ],
        },
      },
    );
  }, 120_000);
});

describe('Leases (coordination.k8s.io)', () => {
  test('create, renew with the resourceVersion, and a stale renewal conflicts', async () => {
    await suite.same(
      async (t) => {
        const path = `/apis/coordination.k8s.io/v1/namespaces/${t.namespace}/leases`;
        const lease = {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: 'deploy-lock' },
          spec: {
            holderIdentity: 'run-1',
            leaseDurationSeconds: 30,
            acquireTime: '2026-01-01T00:00:00.000000Z',
          },
        };
        const created = await t.call('POST', path, lease);
        const again = await t.call('POST', path, lease);
        const meta = created.body['metadata'] as { resourceVersion: string };
        const renewed = await t.call('PUT', `${path}/deploy-lock`, {
          ...lease,
          metadata: { name: 'deploy-lock', resourceVersion: meta.resourceVersion },
          spec: { ...lease.spec, renewTime: '2026-01-01T00:00:10.000000Z' },
        });
        const stale = await t.call('PUT', `${path}/deploy-lock`, {
          ...lease,
          metadata: { name: 'deploy-lock', resourceVersion: meta.resourceVersion },
          spec: { ...lease.spec, holderIdentity: 'run-2' },
        });
        const badDuration = await t.call('POST', path, {
          ...lease,
          metadata: { name: 'bad' },
          spec: { holderIdentity: 'x', leaseDurationSeconds: 0 },
        });
        return {
          created: [created.status, (created.body['spec'] as Record<string, unknown>)['acquireTime']],
          again: statusOf(again),
          renewed: [renewed.status, (renewed.body['spec'] as Record<string, unknown>)['renewTime']],
          stale: statusOf(stale),
          badDuration: statusOf(badDuration),
        };
      },
      {
        created: [201, '2026-01-01T00:00:00.000000Z'],
        again: {
          code: 409,
          reason: 'AlreadyExists',
          message: 'leases.coordination.k8s.io "deploy-lock" already exists',
        },
        renewed: [200, '2026-01-01T00:00:10.000000Z'],
        stale: {
          code: 409,
          reason: 'Conflict',
          message:
            'Operation cannot be fulfilled on leases.coordination.k8s.io "deploy-lock": the object has been modified; please apply your changes to the latest version and try again',
        },
        badDuration: {
          code: 422,
          reason: 'Invalid',
          message:
            'Lease.coordination.k8s.io "bad" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0',
          causes: [
            {
              reason: 'FieldValueInvalid',
              message: 'Invalid value: 0: must be greater than 0',
              field: 'spec.leaseDurationSeconds',
            },
          ],
        },
      },
    );
  });
});
