import { readFileSync } from 'node:fs';
import { KubeClient, loadKubeConfig } from '../../packages/kube/client.ts';
import type { KubeSim } from '../kube-sim/index.ts';

/**
 * The production-plan credentials of docs/environments.md, made for real on a cluster: a
 * ServiceAccount bound to a Role that may only get and list the kinds a deploy applies (Secrets
 * left out unless asked, so their values stay unreadable), and a kubeconfig with its token.
 */
const PLAN_ROLE_RULES = (withSecrets: boolean) => [
  {
    apiGroups: [''],
    resources: ['configmaps', 'services', 'serviceaccounts', ...(withSecrets ? ['secrets'] : [])],
    verbs: ['get', 'list'],
  },
  {
    apiGroups: ['apps'],
    resources: ['deployments', 'statefulsets', 'daemonsets', 'replicasets'],
    verbs: ['get', 'list'],
  },
  { apiGroups: ['batch'], resources: ['jobs', 'cronjobs'], verbs: ['get', 'list'] },
  { apiGroups: ['networking.k8s.io'], resources: ['ingresses'], verbs: ['get', 'list'] },
  { apiGroups: ['gateway.networking.k8s.io'], resources: ['httproutes'], verbs: ['get', 'list'] },
];

export async function readOnlyKubeconfig(
  sim: KubeSim,
  namespace: string,
  options: { name?: string; withSecrets?: boolean } = {},
): Promise<string> {
  const name = options.name ?? 'pipeline-plan';
  const admin = new KubeClient(loadKubeConfig({ kubeconfig: sim.kubeconfig }));
  const ns = encodeURIComponent(namespace);
  const create = async (path: string, body: unknown) => {
    try {
      await admin.json('POST', path, { body });
    } catch (error) {
      if ((error as { status?: number }).status !== 409) throw error;
    }
  };
  try {
    await create('/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: namespace },
    });
    await create(`/api/v1/namespaces/${ns}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name },
    });
    await create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name },
      rules: PLAN_ROLE_RULES(options.withSecrets ?? false),
    });
    await create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace }],
    });
    const request = await admin.json<{ status: { token: string } }>(
      'POST',
      `/api/v1/namespaces/${ns}/serviceaccounts/${encodeURIComponent(name)}/token`,
      {
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { expirationSeconds: 86_400 },
        },
      },
    );
    return readFileSync(sim.writeKubeconfig(request.status.token, namespace), 'utf8');
  } finally {
    admin.close();
  }
}
