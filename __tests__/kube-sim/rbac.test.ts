import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { type KubeSim, startKubeSim } from '../../tooling/kube-sim/index.ts';
import { deployment, kubectl, kubectlTest, removeKubectlCache } from './helpers.ts';

let sim: KubeSim;

async function call(token: string, method: string, path: string, body?: unknown, type = 'application/json') {
  const res = await fetch(`${sim.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': type },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { code: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

const admin = (method: string, path: string, body?: unknown, type?: string) =>
  call(sim.token, method, path, body, type);

async function serviceAccountToken(
  ns: string,
  name: string,
  rules: unknown[],
  roleKind = 'Role',
): Promise<string> {
  await admin('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { metadata: { name } });
  const rbac = '/apis/rbac.authorization.k8s.io/v1';
  if (roleKind === 'Role')
    await admin('POST', `${rbac}/namespaces/${ns}/roles`, { metadata: { name }, rules });
  await admin('POST', `${rbac}/namespaces/${ns}/rolebindings`, {
    metadata: { name },
    roleRef: {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: roleKind,
      name: roleKind === 'Role' ? name : String(rules[0]),
    },
    subjects: [{ kind: 'ServiceAccount', name, namespace: ns }],
  });
  const tr = await admin('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${name}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: 3600 },
  });
  expect(tr.code).toBe(201);
  return String((tr.body['status'] as Record<string, unknown>)['token']);
}

beforeAll(async () => {
  sim = await startKubeSim({
    timeScale: 50,
    namespaces: ['app', 'other'],
    users: [{ token: 'dev-token', name: 'dev', namespaces: ['app'] }],
  });
  await admin('POST', '/apis/apps/v1/namespaces/app/deployments', deployment('web', 'registry/app:v1'));
  await admin('POST', '/api/v1/namespaces/app/secrets', {
    metadata: { name: 'db' },
    stringData: { url: 'x' },
  });
});

afterAll(async () => {
  await sim.close();
  removeKubectlCache();
});

describe('TokenRequest and ServiceAccount tokens', () => {
  test('a TokenRequest token authenticates as system:serviceaccount:<ns>:<name> and dies with its ServiceAccount', async () => {
    const token = await serviceAccountToken('app', 'who', []);
    const review = await call(token, 'POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'SelfSubjectReview',
    });
    expect(review.body['status']).toEqual({
      userInfo: {
        username: 'system:serviceaccount:app:who',
        groups: ['system:serviceaccounts', 'system:serviceaccounts:app', 'system:authenticated'],
      },
    });
    await admin('DELETE', '/api/v1/namespaces/app/serviceaccounts/who');
    expect((await call(token, 'GET', '/api/v1/namespaces/app/pods')).code).toBe(401);
  });

  test('expirationSeconds under ten minutes is a 422 as on the real server', async () => {
    const tr = await admin('POST', '/api/v1/namespaces/app/serviceaccounts/default/token', {
      spec: { expirationSeconds: 60 },
    });
    expect(tr.code).toBe(422);
    expect(tr.body['details']).toMatchObject({
      causes: [{ reason: 'FieldValueInvalid', field: 'spec.expirationSeconds' }],
    });
  });
});

describe('RBAC enforcement', () => {
  test('a read-only Role can get and list deployments but not delete, scale, or read secrets; 403 bodies are the real ones', async () => {
    const token = await serviceAccountToken('app', 'reader', [
      { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'watch'] },
    ]);
    expect((await call(token, 'GET', '/apis/apps/v1/namespaces/app/deployments')).code).toBe(200);
    expect((await call(token, 'GET', '/apis/apps/v1/namespaces/app/deployments/web')).code).toBe(200);
    const del = await call(token, 'DELETE', '/apis/apps/v1/namespaces/app/deployments/web');
    expect(del).toEqual({
      code: 403,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message:
          'deployments.apps "web" is forbidden: User "system:serviceaccount:app:reader" cannot delete resource "deployments" in API group "apps" in the namespace "app"',
        reason: 'Forbidden',
        details: { name: 'web', group: 'apps', kind: 'deployments' },
        code: 403,
      },
    });
    const scale = await call(
      token,
      'PATCH',
      '/apis/apps/v1/namespaces/app/deployments/web/scale',
      { spec: { replicas: 5 } },
      'application/merge-patch+json',
    );
    expect(scale.code).toBe(403);
    expect(scale.body['message']).toContain('cannot patch resource "deployments/scale" in API group "apps"');
    const secrets = await call(token, 'GET', '/api/v1/namespaces/app/secrets');
    expect(secrets.body['message']).toBe(
      'secrets is forbidden: User "system:serviceaccount:app:reader" cannot list resource "secrets" in API group "" in the namespace "app"',
    );
    expect((await call(token, 'GET', '/apis/apps/v1/namespaces/other/deployments')).code).toBe(403);
    expect((await call(token, 'GET', '/apis/apps/v1/deployments')).body['message']).toContain(
      'at the cluster scope',
    );
    expect(sim.peek('Deployment', 'app', 'web')?.spec).toMatchObject({ replicas: 3 });
  });

  test('subresources, resourceNames, * and */subresource match as the real rules do', async () => {
    const token = await serviceAccountToken('app', 'ops', [
      {
        apiGroups: ['apps'],
        resources: ['deployments/scale'],
        verbs: ['get', 'patch'],
        resourceNames: ['web'],
      },
      { apiGroups: [''], resources: ['pods/log', '*/proxy'], verbs: ['get'] },
      { apiGroups: ['coordination.k8s.io'], resources: ['*'], verbs: ['*'] },
    ]);
    const scale = await call(
      token,
      'PATCH',
      '/apis/apps/v1/namespaces/app/deployments/web/scale',
      { spec: { replicas: 2 } },
      'application/merge-patch+json',
    );
    expect(scale.code).toBe(200);
    expect((await call(token, 'GET', '/apis/apps/v1/namespaces/app/deployments/web')).code).toBe(403);
    expect((await call(token, 'GET', '/apis/apps/v1/namespaces/app/deployments/other/scale')).code).toBe(403);
    expect((await call(token, 'GET', '/api/v1/namespaces/app/services/web/proxy/health')).code).not.toBe(403);
    expect((await call(token, 'GET', '/api/v1/namespaces/app/pods')).code).toBe(403);
    const lease = await call(token, 'POST', '/apis/coordination.k8s.io/v1/namespaces/app/leases', {
      metadata: { name: 'lock' },
      spec: { holderIdentity: 'me' },
    });
    expect(lease.code).toBe(201);
  });

  test('a RoleBinding to a ClusterRole grants it in one namespace; a missing Role is named in the 403', async () => {
    const token = await serviceAccountToken('app', 'viewer', ['view'], 'ClusterRole');
    expect((await call(token, 'GET', '/api/v1/namespaces/app/pods')).code).toBe(200);
    expect((await call(token, 'GET', '/api/v1/namespaces/other/pods')).code).toBe(403);
    expect((await call(token, 'GET', '/api/v1/namespaces/app/secrets')).code).toBe(403);
    await admin('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/app/rolebindings', {
      metadata: { name: 'dangling' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'ghost' },
      subjects: [{ kind: 'ServiceAccount', name: 'viewer' }],
    });
    const denied = await call(token, 'GET', '/api/v1/namespaces/app/secrets');
    expect(denied.body['message']).toMatch(/: RBAC: role\.rbac\.authorization\.k8s\.io "ghost" not found$/);
  });

  test('a ClusterRoleBinding grants across namespaces; the users option keeps its namespaces', async () => {
    await admin('POST', '/api/v1/namespaces/other/serviceaccounts', { metadata: { name: 'global' } });
    await admin('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      metadata: { name: 'global-view' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
      subjects: [{ kind: 'ServiceAccount', name: 'global', namespace: 'other' }],
    });
    const tr = await admin('POST', '/api/v1/namespaces/other/serviceaccounts/global/token', {});
    const token = String((tr.body['status'] as Record<string, unknown>)['token']);
    expect((await call(token, 'GET', '/apis/apps/v1/deployments')).code).toBe(200);
    expect((await call('dev-token', 'GET', '/api/v1/namespaces/app/secrets')).code).toBe(200);
    expect((await call('dev-token', 'GET', '/api/v1/namespaces/other/secrets')).code).toBe(403);
  });

  test('SelfSubjectAccessReview answers allowed with the binding that allowed it', async () => {
    const token = await serviceAccountToken('app', 'asker', [
      { apiGroups: ['apps'], resources: ['deployments'], verbs: ['patch'] },
    ]);
    const ask = (verb: string, resource: string, group = 'apps') =>
      call(token, 'POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: { resourceAttributes: { namespace: 'app', verb, group, resource } },
      });
    const yes = await ask('patch', 'deployments');
    expect(yes.code).toBe(201);
    expect(yes.body['status']).toEqual({
      allowed: true,
      reason: 'RBAC: allowed by RoleBinding "asker/app" of Role "asker" to ServiceAccount "asker/app"',
    });
    expect((await ask('delete', 'deployments')).body['status']).toEqual({ allowed: false });
  });

  kubectlTest('kubectl auth can-i answers yes and no for a ServiceAccount token', async () => {
    const token = await serviceAccountToken('app', 'cani', [
      { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'patch'] },
    ]);
    const file = join(tmpdir(), `kube-sim-rbac-${process.pid}`);
    writeFileSync(
      file,
      sim.kubeconfig.replace(/token: .*/, `token: ${token}`).replace('namespace: default', 'namespace: app'),
    );
    expect(
      (await kubectl(sim, ['auth', 'can-i', 'patch', 'deployments'], undefined, file)).stdout.trim(),
    ).toBe('yes');
    const no = await kubectl(sim, ['auth', 'can-i', 'delete', 'deployments'], undefined, file);
    expect(no.stdout.trim()).toBe('no');
    expect(no.code).toBe(1);
    const denied = await kubectl(sim, ['delete', 'deployment', 'web'], undefined, file);
    expect(denied.stderr).toContain('Error from server (Forbidden)');
    expect(sim.peek('Deployment', 'app', 'web')).toBeDefined();
  });
});
