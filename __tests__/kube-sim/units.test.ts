import { describe, expect, test } from '@jest/globals';
import { BehaviourTable } from '../../tooling/kube-sim/behaviour.ts';
import { resolveIntOrPercent, templateKey } from '../../tooling/kube-sim/controllers/deployment.ts';
import { decodeFields, encodeFields, fieldSetOf } from '../../tooling/kube-sim/managed-fields.ts';
import { applyJsonPatch, applyMergePatch, strategicMerge } from '../../tooling/kube-sim/patch.ts';
import { parseFieldSelector, parseLabelSelector } from '../../tooling/kube-sim/selectors.ts';
import type { KubeObject } from '../../tooling/kube-sim/types.ts';

describe('selectors', () => {
  test('label selectors support =, ==, !=, in, notin, exists and !exists', () => {
    const labels = { app: 'web', tier: 'front' };
    expect(parseLabelSelector('app=web,tier==front')(labels)).toBe(true);
    expect(parseLabelSelector('app!=web')(labels)).toBe(false);
    expect(parseLabelSelector('tier in (back, front)')(labels)).toBe(true);
    expect(parseLabelSelector('tier notin (front)')(labels)).toBe(false);
    expect(parseLabelSelector('app,!canary')(labels)).toBe(true);
    expect(parseLabelSelector('canary')(labels)).toBe(false);
    expect(() => parseLabelSelector('a=(b')).toThrow('unable to parse requirement');
  });

  test('field selectors read dotted paths, absent fields as empty', () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'n' },
      status: { phase: 'Running' },
    } as KubeObject;
    expect(parseFieldSelector('metadata.name=p,status.phase=Running')(pod)).toBe(true);
    expect(parseFieldSelector('status.phase!=Running')(pod)).toBe(false);
    expect(parseFieldSelector('spec.nodeName=')(pod)).toBe(true);
  });
});

describe('patch formats', () => {
  test('strategic merge honours $retainKeys, $setElementOrder and $deleteFromPrimitiveList as kubectl sends them', () => {
    const live = {
      metadata: { finalizers: ['a', 'b'] },
      spec: { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1 } } },
    };
    const out = strategicMerge(live, {
      metadata: { '$deleteFromPrimitiveList/finalizers': ['a'] },
      spec: {
        '$setElementOrder/containers': [{ name: 'a' }],
        strategy: { $retainKeys: ['type'], type: 'Recreate', rollingUpdate: null },
      },
    });
    expect(out).toEqual({ metadata: { finalizers: ['b'] }, spec: { strategy: { type: 'Recreate' } } });
  });

  test('service ports merge by port, container ports by containerPort; $patch: replace replaces a list', () => {
    const svc = {
      spec: {
        ports: [
          { port: 80, name: 'http' },
          { port: 443, name: 'https' },
        ],
      },
    };
    expect(strategicMerge(svc, { spec: { ports: [{ port: 80, targetPort: 8080 }] } })).toEqual({
      spec: {
        ports: [
          { port: 80, name: 'http', targetPort: 8080 },
          { port: 443, name: 'https' },
        ],
      },
    });
    expect(strategicMerge(svc, { spec: { ports: [{ $patch: 'replace' }, { port: 8080 }] } })).toEqual({
      spec: { ports: [{ port: 8080 }] },
    });
  });

  test('merge patch deletes with null; JSON patch supports move, copy and the - index', () => {
    expect(applyMergePatch({ a: 1, b: { c: 2, d: 3 } }, { b: { c: null }, e: [1] })).toEqual({
      a: 1,
      b: { d: 3 },
      e: [1],
    });
    expect(
      applyJsonPatch({ list: [1], a: 'x' }, [
        { op: 'add', path: '/list/-', value: 2 },
        { op: 'copy', from: '/a', path: '/b' },
        { op: 'move', from: '/a', path: '/c' },
      ]),
    ).toEqual({ list: [1, 2], b: 'x', c: 'x' });
  });
});

describe('bookkeeping', () => {
  test('managed fields round-trip through FieldsV1 with associative list keys', () => {
    const obj = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'x', labels: { app: 'x' } },
      spec: { replicas: 2, template: { spec: { containers: [{ name: 'app', image: 'i' }] } } },
      status: { replicas: 2 },
    } as KubeObject;
    const set = fieldSetOf(obj);
    const encoded = encodeFields(set);
    expect(encoded).toEqual({
      'f:metadata': { 'f:labels': { 'f:app': {} } },
      'f:spec': {
        'f:replicas': {},
        'f:template': {
          'f:spec': { 'f:containers': { 'k:{"name":"app"}': { '.': {}, 'f:image': {}, 'f:name': {} } } },
        },
      },
    });
    expect(decodeFields(encoded)).toEqual(set);
  });

  test('int-or-percent: surge rounds up, unavailable rounds down', () => {
    expect(resolveIntOrPercent('25%', 10, true)).toBe(3);
    expect(resolveIntOrPercent('25%', 10, false)).toBe(2);
    expect(resolveIntOrPercent(2, 10, false)).toBe(2);
  });

  test("the pod-template-hash label does not change a template's identity", () => {
    const t = { metadata: { labels: { app: 'x' } }, spec: { containers: [{ name: 'a', image: 'i' }] } };
    const hashed = {
      metadata: { labels: { 'pod-template-hash': 'abc', app: 'x' } },
      spec: { containers: [{ image: 'i', name: 'a' }] },
    };
    expect(templateKey(hashed)).toBe(templateKey(t));
  });

  test('image behaviour: globs over the whole reference, later settings win, default is ready', () => {
    const table = new BehaviourTable([
      { pattern: 'registry/app:bad-*', mode: 'crash' },
      { pattern: /:v2$/, mode: 'never-ready' },
    ]);
    expect(table.lookup('registry/app:bad-1').mode).toBe('crash');
    expect(table.lookup('registry/app:v2').mode).toBe('never-ready');
    expect(table.lookup('other/app:bad-1').mode).toBeUndefined();
    table.set('registry/*', { mode: 'pull-error' });
    expect(table.lookup('registry/app:bad-1').mode).toBe('pull-error');
  });
});
