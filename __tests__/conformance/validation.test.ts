import { describe, expect, test } from '@jest/globals';
import { conformanceSuite, deployment, statusOf, type Target, warningsOf } from './harness.ts';

const suite = conformanceSuite('validation');

const deployments = (t: Target, q = '') => `/apis/apps/v1/namespaces/${t.namespace}/deployments${q}`;
const configmaps = (t: Target, q = '') => `/api/v1/namespaces/${t.namespace}/configmaps${q}`;

describe('field validation', () => {
  const typo = (name: string) => {
    const d = deployment(name) as Record<string, unknown> & { spec: Record<string, unknown> };
    d.spec['replicass'] = 3;
    (d.spec['template'] as { spec: { containers: Record<string, unknown>[] } }).spec.containers[0]![
      'imagePolicy'
    ] = 'Always';
    return d;
  };

  test('Strict rejects unknown fields with a 400 naming every path; nothing is stored', async () => {
    await suite.same(
      async (t) => {
        const r = await t.call('POST', deployments(t, '?fieldValidation=Strict'), typo('web'));
        const after = await t.call('GET', deployments(t, '/web'));
        return { ...statusOf(r), stored: after.status };
      },
      {
        code: 400,
        reason: 'BadRequest',
        message:
          'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.template.spec.containers[0].imagePolicy", unknown field "spec.replicass"',
        stored: 404,
      },
    );
  });

  test('Warn (and no fieldValidation) stores the object and answers one Warning per unknown field', async () => {
    await suite.same(
      async (t) => {
        const warn = await t.call('POST', deployments(t, '?fieldValidation=Warn'), typo('a'));
        const none = await t.call('POST', deployments(t), typo('b'));
        const spec = (none.body['spec'] ?? {}) as Record<string, unknown>;
        return {
          codes: [warn.status, none.status],
          warnings: [warningsOf(warn), warningsOf(none)],
          kept: 'replicass' in spec,
        };
      },
      {
        codes: [201, 201],
        warnings: [
          ['unknown field "spec.template.spec.containers[0].imagePolicy"', 'unknown field "spec.replicass"'],
          ['unknown field "spec.template.spec.containers[0].imagePolicy"', 'unknown field "spec.replicass"'],
        ],
        kept: false,
      },
    );
  });

  test('Ignore stores silently; an unsupported fieldValidation value is a 422 of CreateOptions', async () => {
    await suite.same(
      async (t) => {
        const ignore = await t.call('POST', deployments(t, '?fieldValidation=Ignore'), typo('c'));
        const bogus = await t.call('POST', deployments(t, '?fieldValidation=Loud'), typo('d'));
        return { ignore: [ignore.status, warningsOf(ignore)], bogus: statusOf(bogus) };
      },
      {
        ignore: [201, []],
        bogus: {
          code: 422,
          reason: 'Invalid',
          message:
            'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Loud": supported values: "", "Ignore", "Strict", "Warn"',
          causes: [
            {
              reason: 'FieldValueNotSupported',
              message: 'Unsupported value: "Loud": supported values: "", "Ignore", "Strict", "Warn"',
              field: 'fieldValidation',
            },
          ],
        },
      },
    );
  });

  test('kubectl apply --validate=strict refuses a typo; the server answers it, not the client', async () => {
    await suite.same(
      async (t) => {
        const manifest = JSON.stringify(typo('e'));
        const r = await t.kubectl(['apply', '--validate=strict', '-n', t.namespace, '-f', '-'], {
          input: manifest,
        });
        return { code: r.code, stderr: r.stderr.trim() };
      },
      {
        code: 1,
        stderr:
          'Error from server (BadRequest): error when creating "STDIN": Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.replicass", unknown field "spec.template.spec.containers[0].imagePolicy"',
      },
    );
  });
});

describe('types and encodings', () => {
  test('wrong types are the decoder 400s whatever fieldValidation says', async () => {
    await suite.same(
      async (t) => {
        const cm = await t.call('POST', configmaps(t, '?fieldValidation=Ignore'), {
          metadata: { name: 'cfg' },
          data: { PORT: 8080 },
        });
        const d = deployment('typed') as { spec: Record<string, unknown> };
        d.spec['replicas'] = '3';
        const dep = await t.call('POST', deployments(t), d);
        const bool = await t.call('POST', deployments(t), {
          ...deployment('b'),
          spec: { ...deployment('b').spec, paused: 'yes' },
        });
        const list = await t.call('POST', configmaps(t), { metadata: { name: 'x', finalizers: 'one' } });
        return [statusOf(cm), statusOf(dep), statusOf(bool), statusOf(list)];
      },
      [
        {
          code: 400,
          reason: 'BadRequest',
          message:
            'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal number into Go struct field ConfigMap.data of type string',
        },
        {
          code: 400,
          reason: 'BadRequest',
          message:
            'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32',
        },
        {
          code: 400,
          reason: 'BadRequest',
          message:
            'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.paused of type bool',
        },
        {
          code: 400,
          reason: 'BadRequest',
          message:
            'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal string into Go struct field ObjectMeta.metadata.finalizers of type []string',
        },
      ],
    );
  });

  test('Secret data that is not base64 is a 400; stringData is encoded', async () => {
    await suite.same(
      async (t) => {
        const bad = await t.call('POST', `/api/v1/namespaces/${t.namespace}/secrets`, {
          metadata: { name: 'bad' },
          data: { key: 'not-base64!' },
        });
        const good = await t.call('POST', `/api/v1/namespaces/${t.namespace}/secrets`, {
          metadata: { name: 'good' },
          stringData: { key: 'value' },
        });
        return { bad: statusOf(bad), good: [good.status, good.body['data'], good.body['type']] };
      },
      {
        bad: {
          code: 400,
          reason: 'BadRequest',
          message:
            'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3',
        },
        good: [201, { key: 'dmFsdWU=' }, 'Opaque'],
      },
    );
  });
});

describe('size limits', () => {
  test('ConfigMap data over 1 MiB is a 422; a body over 3 MiB is a 413', async () => {
    await suite.same(
      async (t) => {
        const big = await t.call('POST', configmaps(t), {
          metadata: { name: 'big' },
          data: { blob: 'x'.repeat(1_100_000) },
        });
        const huge = await t.call('POST', configmaps(t), {
          metadata: { name: 'huge' },
          data: { blob: 'x'.repeat(3_200_000) },
        });
        return { big: statusOf(big), huge: { code: huge.status, reason: huge.body['reason'] } };
      },
      {
        big: {
          code: 422,
          reason: 'Invalid',
          message: 'ConfigMap "big" is invalid: []: Too long: may not be more than 1048576 bytes',
          causes: [
            {
              reason: 'FieldValueTooLong',
              message: 'Too long: may not be more than 1048576 bytes',
              field: '[]',
            },
          ],
        },
        huge: { code: 413, reason: 'RequestEntityTooLarge' },
      },
    );
  });
});

describe('422 causes of invalid Deployments', () => {
  const cases: [string, (d: ReturnType<typeof deployment>) => void][] = [
    ['negative replicas', (d) => Object.assign(d.spec, { replicas: -1 })],
    [
      'selector that does not match',
      (d) => Object.assign(d.spec, { selector: { matchLabels: { app: 'other' } } }),
    ],
    ['no selector', (d) => Object.assign(d.spec, { selector: undefined })],
    ['empty selector', (d) => Object.assign(d.spec, { selector: {} })],
    ['no containers', (d) => Object.assign(d.spec.template.spec, { containers: [] })],
    [
      'duplicate container names',
      (d) =>
        d.spec.template.spec.containers.push({ name: 'app', image: 'registry.example/side:v1', ports: [] }),
    ],
    ['missing image', (d) => Object.assign(d.spec.template.spec.containers[0]!, { image: '' })],
    [
      'port out of range',
      (d) => Object.assign(d.spec.template.spec.containers[0]!, { ports: [{ containerPort: 70000 }] }),
    ],
    ['bad container name', (d) => Object.assign(d.spec.template.spec.containers[0]!, { name: 'App_1' })],
    ['restartPolicy Never', (d) => Object.assign(d.spec.template.spec, { restartPolicy: 'Never' })],
    ['unknown strategy', (d) => Object.assign(d.spec, { strategy: { type: 'Blue' } })],
    [
      'maxSurge and maxUnavailable both 0',
      (d) => Object.assign(d.spec, { strategy: { rollingUpdate: { maxSurge: 0, maxUnavailable: 0 } } }),
    ],
    [
      'maxUnavailable over 100%',
      (d) => Object.assign(d.spec, { strategy: { rollingUpdate: { maxUnavailable: '150%' } } }),
    ],
    [
      'maxSurge not a percent',
      (d) => Object.assign(d.spec, { strategy: { rollingUpdate: { maxSurge: 'half' } } }),
    ],
    [
      'rollingUpdate with Recreate',
      (d) => Object.assign(d.spec, { strategy: { type: 'Recreate', rollingUpdate: { maxSurge: 1 } } }),
    ],
    [
      'progress deadline not above minReadySeconds',
      (d) => Object.assign(d.spec, { minReadySeconds: 30, progressDeadlineSeconds: 30 }),
    ],
    ['negative revisionHistoryLimit', (d) => Object.assign(d.spec, { revisionHistoryLimit: -2 })],
    [
      'requests over limits',
      (d) =>
        Object.assign(d.spec.template.spec.containers[0]!, {
          resources: { requests: { cpu: '2' }, limits: { cpu: '1' } },
        }),
    ],
  ];

  test.each(cases)('%s: same code, message and causes', async (_name, mutate) => {
    const results: Record<string, unknown> = {};
    await suite.same(
      async (t) => {
        const d = deployment('bad');
        mutate(d);
        const r = await t.call('POST', deployments(t), JSON.parse(JSON.stringify(d)));
        const s = statusOf(r);
        results[t.kind] = s;
        return { code: s.code, reason: s.reason };
      },
      { code: 422, reason: 'Invalid' },
    );
    if (results['real'] && results['kube-sim']) expect(results['kube-sim']).toEqual(results['real']);
  });
});

describe('dry run and options', () => {
  test('dryRun=All validates and answers the object without storing it; other values are a 422', async () => {
    await suite.same(
      async (t) => {
        const dry = await t.call('POST', configmaps(t, '?dryRun=All'), {
          metadata: { name: 'dry' },
          data: { a: 'b' },
        });
        const bogus = await t.call('POST', configmaps(t, '?dryRun=bogus'), { metadata: { name: 'bogus' } });
        const stored = await t.call('GET', configmaps(t));
        const dryBody = dry.body as { metadata?: { name?: string; uid?: string } };
        return {
          dry: [dry.status, dryBody.metadata?.name, typeof dryBody.metadata?.uid],
          bogus: statusOf(bogus),
          stored: ((stored.body['items'] ?? []) as { metadata: { name: string } }[])
            .map((i) => i.metadata.name)
            .filter((n) => n !== 'kube-root-ca.crt'),
        };
      },
      {
        dry: [201, 'dry', 'string'],
        bogus: {
          code: 422,
          reason: 'Invalid',
          message:
            'CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: ["bogus"]: supported values: "All"',
          causes: [
            {
              reason: 'FieldValueNotSupported',
              message: 'Unsupported value: ["bogus"]: supported values: "All"',
              field: 'dryRun',
            },
          ],
        },
        stored: [],
      },
    );
  });

  test('a dry-run delete leaves the object; force on a merge patch is a 422', async () => {
    await suite.same(
      async (t) => {
        await t.call('POST', configmaps(t), { metadata: { name: 'keep' } });
        const del = await t.call('DELETE', configmaps(t, '/keep?dryRun=All'));
        const still = await t.call('GET', configmaps(t, '/keep'));
        const forced = await t.call(
          'PATCH',
          configmaps(t, '/keep?force=true'),
          { data: { a: 'b' } },
          {
            type: 'application/merge-patch+json',
          },
        );
        return { del: del.status, still: still.status, forced: statusOf(forced) };
      },
      {
        del: 200,
        still: 200,
        forced: {
          code: 422,
          reason: 'Invalid',
          message:
            'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch',
          causes: [
            {
              reason: 'FieldValueForbidden',
              message: 'Forbidden: may not be specified for non-apply patch',
              field: 'force',
            },
          ],
        },
      },
    );
  });
});

describe('query booleans', () => {
  test('watch=True, watch=1 and watch=yes all watch; watch=false and watch=0 list', async () => {
    await suite.same(
      async (t) => {
        const kindOf = async (v: string) => {
          const r = await t.call('GET', configmaps(t, `?watch=${v}&timeoutSeconds=1`));
          return r.text.startsWith('{"type":') || r.text === '' ? 'watch' : String(r.body['kind']);
        };
        return Promise.all(['True', '1', 'yes', 'false', 'FALSE', '0'].map(kindOf));
      },
      ['watch', 'watch', 'watch', 'ConfigMapList', 'ConfigMapList', 'ConfigMapList'],
    );
  }, 30_000);
});
