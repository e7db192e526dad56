import { describe, expect, test } from '@jest/globals';
import { conformanceSuite, deployment, statusOf, type Target } from './harness.ts';

const suite = conformanceSuite('apply-patch');

const APPLY = 'application/apply-patch+yaml';
const path = (t: Target, name: string, q = '') =>
  `/apis/apps/v1/namespaces/${t.namespace}/deployments/${name}${q}`;

function containers(d: Record<string, unknown>): unknown {
  const spec = (d['spec'] ?? {}) as { template?: { spec?: { containers?: Record<string, unknown>[] } } };
  return (spec.template?.spec?.containers ?? []).map((c) => ({
    name: c['name'],
    image: c['image'],
    ports: c['ports'],
  }));
}

/** managedFields without the timestamps. */
function owners(d: Record<string, unknown>): unknown {
  const meta = (d['metadata'] ?? {}) as { managedFields?: Record<string, unknown>[] };
  return (meta.managedFields ?? []).map(({ time: _time, ...rest }) => rest);
}

const withSidecar = () => {
  const d = deployment('web');
  d.spec.template.spec.containers = [
    {
      name: 'app',
      image: 'registry.example/app:v1',
      ports: [{ containerPort: 8080 }, { containerPort: 9090 }],
    },
    { name: 'sidecar', image: 'registry.example/proxy:v1', ports: [] },
  ];
  return d;
};

describe('server-side apply', () => {
  test('apply records its fields in managedFields exactly as the real server encodes them', async () => {
    await suite.same(
      async (t) => {
        const r = await t.call('PATCH', path(t, 'web', '?fieldManager=deployer'), withSidecar(), {
          type: APPLY,
        });
        return { code: r.status, owners: owners(r.body) };
      },
      {
        code: 201,
        owners: [
          {
            manager: 'deployer',
            operation: 'Apply',
            apiVersion: 'apps/v1',
            fieldsType: 'FieldsV1',
            fieldsV1: {
              'f:spec': {
                'f:replicas': {},
                'f:selector': {},
                'f:template': {
                  'f:metadata': { 'f:labels': { 'f:app': {} } },
                  'f:spec': {
                    'f:containers': {
                      'k:{"name":"app"}': {
                        '.': {},
                        'f:image': {},
                        'f:name': {},
                        'f:ports': {
                          'k:{"containerPort":8080,"protocol":"TCP"}': { '.': {}, 'f:containerPort': {} },
                          'k:{"containerPort":9090,"protocol":"TCP"}': { '.': {}, 'f:containerPort': {} },
                        },
                      },
                      'k:{"name":"sidecar"}': { '.': {}, 'f:image': {}, 'f:name': {} },
                    },
                  },
                },
              },
            },
          },
        ],
      },
    );
  });

  test('dropping a sidecar container and a port from the configuration removes them', async () => {
    await suite.same(
      async (t) => {
        await t.call('PATCH', path(t, 'web', '?fieldManager=deployer'), withSidecar(), { type: APPLY });
        const r = await t.call('PATCH', path(t, 'web', '?fieldManager=deployer'), deployment('web'), {
          type: APPLY,
        });
        return { code: r.status, containers: containers(r.body) };
      },
      {
        code: 200,
        containers: [
          {
            name: 'app',
            image: 'registry.example/app:v1',
            ports: [{ containerPort: 8080, protocol: 'TCP' }],
          },
        ],
      },
    );
  });

  test('a second manager changing a field conflicts (409 with one cause per field); force takes it over', async () => {
    await suite.same(
      async (t) => {
        await t.call('PATCH', path(t, 'web', '?fieldManager=first'), deployment('web'), { type: APPLY });
        const theirs = {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'web' },
          spec: { replicas: 5 },
        };
        const conflict = await t.call('PATCH', path(t, 'web', '?fieldManager=second'), theirs, {
          type: APPLY,
        });
        const forced = await t.call('PATCH', path(t, 'web', '?fieldManager=second&force=True'), theirs, {
          type: APPLY,
        });
        const spec = forced.body['spec'] as { replicas: number };
        return {
          conflict: statusOf(conflict),
          forced: forced.status,
          replicas: spec.replicas,
          owners: (
            owners(forced.body) as { manager: string; fieldsV1: { 'f:spec'?: Record<string, unknown> } }[]
          )
            .map((o) => [o.manager, 'f:replicas' in (o.fieldsV1['f:spec'] ?? {})])
            // The controllers' own status entries come and go with their timing.
            .filter(([m]) => m === 'first' || m === 'second'),
        };
      },
      {
        conflict: {
          code: 409,
          reason: 'Conflict',
          message: 'Apply failed with 1 conflict: conflict with "first": .spec.replicas',
          causes: [
            { reason: 'FieldManagerConflict', message: 'conflict with "first"', field: '.spec.replicas' },
          ],
        },
        forced: 200,
        replicas: 5,
        owners: [
          ['first', false],
          ['second', true],
        ],
      },
    );
  });

  test('an Update (kubectl scale) owns replicas; a later apply of another count conflicts with it', async () => {
    await suite.same(
      async (t) => {
        await t.call('PATCH', path(t, 'web', '?fieldManager=deployer'), deployment('web'), { type: APPLY });
        const scaled = await t.kubectl(['scale', '-n', t.namespace, 'deployment/web', '--replicas=4']);
        const d = deployment('web');
        d.spec.replicas = 3;
        const again = await t.call('PATCH', path(t, 'web', '?fieldManager=deployer'), d, { type: APPLY });
        return { scaled: scaled.code, again: statusOf(again) };
      },
      {
        scaled: 0,
        again: {
          code: 409,
          reason: 'Conflict',
          message:
            'Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas',
          causes: [
            {
              reason: 'FieldManagerConflict',
              message: 'conflict with "kubectl" with subresource "scale" using apps/v1',
              field: '.spec.replicas',
            },
          ],
        },
      },
    );
  });

  test('apply without fieldManager is a 422; managedFields in an apply configuration is a 400; [{}] clears them', async () => {
    await suite.same(
      async (t) => {
        const noManager = await t.call('PATCH', path(t, 'web'), deployment('web'), { type: APPLY });
        await t.call('PATCH', path(t, 'web', '?fieldManager=deployer'), deployment('web'), { type: APPLY });
        const withFields = await t.call(
          'PATCH',
          path(t, 'web', '?fieldManager=deployer'),
          {
            ...deployment('web'),
            metadata: { name: 'web', managedFields: [{ manager: 'x', operation: 'Apply' }] },
          },
          { type: APPLY },
        );
        const cleared = await t.call(
          'PATCH',
          path(t, 'web'),
          { metadata: { managedFields: [{}] } },
          {
            type: 'application/merge-patch+json',
          },
        );
        return {
          noManager: statusOf(noManager),
          withFields: statusOf(withFields),
          cleared: [cleared.status, owners(cleared.body)],
        };
      },
      {
        noManager: {
          code: 422,
          reason: 'Invalid',
          message:
            'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
          causes: [
            {
              reason: 'FieldValueRequired',
              message: 'Required value: is required for apply patch',
              field: 'fieldManager',
            },
          ],
        },
        withFields: { code: 400, reason: 'BadRequest', message: 'metadata.managedFields must be nil' },
        cleared: [200, []],
      },
    );
  });

  test('an unknown field in an apply configuration fails its typed conversion', async () => {
    await suite.same(
      async (t) => {
        const d = deployment('web') as Record<string, unknown> & { spec: Record<string, unknown> };
        d.spec['replicass'] = 2;
        return statusOf(await t.call('PATCH', path(t, 'web', '?fieldManager=deployer'), d, { type: APPLY }));
      },
      {
        code: 500,
        message: expect.stringMatching(
          /^failed to create typed patch object \(\/web; apps\/v1, Kind=Deployment\): \.spec\.replicass: field not declared in schema$/,
        ),
        reason: undefined,
      },
    );
  });
});

describe('patch types', () => {
  test('JSON patch, merge patch and strategic merge patch change the object as the real server does', async () => {
    await suite.same(
      async (t) => {
        await t.call('POST', `/apis/apps/v1/namespaces/${t.namespace}/deployments`, withSidecar());
        const json = await t.call(
          'PATCH',
          path(t, 'web'),
          [
            { op: 'add', path: '/metadata/labels', value: { tier: 'web' } },
            { op: 'replace', path: '/spec/replicas', value: 3 },
          ],
          { type: 'application/json-patch+json' },
        );
        const failedTest = await t.call(
          'PATCH',
          path(t, 'web'),
          [{ op: 'test', path: '/spec/replicas', value: 9 }],
          {
            type: 'application/json-patch+json',
          },
        );
        const merge = await t.call(
          'PATCH',
          path(t, 'web'),
          { metadata: { labels: { tier: null, team: 'a' } } },
          {
            type: 'application/merge-patch+json',
          },
        );
        const strategic = await t.call(
          'PATCH',
          path(t, 'web'),
          {
            spec: {
              template: {
                spec: {
                  containers: [
                    { name: 'sidecar', $patch: 'delete' },
                    { name: 'app', image: 'registry.example/app:v2' },
                  ],
                },
              },
            },
          },
          { type: 'application/strategic-merge-patch+json' },
        );
        const mergeList = await t.call(
          'PATCH',
          path(t, 'web'),
          {
            spec: {
              template: { spec: { containers: [{ name: 'only', image: 'registry.example/only:v1' }] } },
            },
          },
          { type: 'application/merge-patch+json' },
        );
        const unsupported = await t.call('PATCH', path(t, 'web'), '{}', { type: 'application/x-patch' });
        return {
          json: [
            json.status,
            (json.body['metadata'] as { labels: unknown }).labels,
            (json.body['spec'] as { replicas: number }).replicas,
          ],
          failedTest: { code: failedTest.status, reason: failedTest.body['reason'] },
          merge: (merge.body['metadata'] as { labels: unknown }).labels,
          strategic: containers(strategic.body),
          mergeList: containers(mergeList.body),
          unsupported: { code: unsupported.status, reason: unsupported.body['reason'] },
        };
      },
      {
        json: [200, { tier: 'web' }, 3],
        failedTest: { code: 422, reason: 'Invalid' },
        merge: { team: 'a' },
        strategic: [
          {
            name: 'app',
            image: 'registry.example/app:v2',
            ports: [
              { containerPort: 8080, protocol: 'TCP' },
              { containerPort: 9090, protocol: 'TCP' },
            ],
          },
        ],
        mergeList: [{ name: 'only', image: 'registry.example/only:v1', ports: undefined }],
        unsupported: { code: 415, reason: 'UnsupportedMediaType' },
      },
    );
  });
});
