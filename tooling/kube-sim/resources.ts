/** The resource types kube-sim serves, as discovery describes them. */

export interface ResourceInfo {
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  subresources: string[];
  /** metadata.generation moves when the spec changes. */
  generation: boolean;
  categories: string[];
  /** Discovery verbs when not the usual eight (review resources only take create). */
  verbs?: string[];
}

function res(
  group: string,
  version: string,
  kind: string,
  plural: string,
  namespaced: boolean,
  extra: Partial<
    Pick<ResourceInfo, 'shortNames' | 'subresources' | 'generation' | 'categories' | 'verbs'>
  > = {},
): ResourceInfo {
  return {
    ...(extra.verbs ? { verbs: extra.verbs } : {}),
    group,
    version,
    kind,
    plural,
    singular: kind.toLowerCase(),
    namespaced,
    shortNames: extra.shortNames ?? [],
    subresources: extra.subresources ?? [],
    generation: extra.generation ?? false,
    categories: extra.categories ?? [],
  };
}

export const RESOURCES: readonly ResourceInfo[] = [
  res('', 'v1', 'Namespace', 'namespaces', false, { shortNames: ['ns'], subresources: ['status'] }),
  res('', 'v1', 'ConfigMap', 'configmaps', true, { shortNames: ['cm'] }),
  res('', 'v1', 'Secret', 'secrets', true),
  res('', 'v1', 'Service', 'services', true, {
    shortNames: ['svc'],
    subresources: ['status', 'proxy'],
    categories: ['all'],
  }),
  res('', 'v1', 'Endpoints', 'endpoints', true, { shortNames: ['ep'] }),
  res('', 'v1', 'Pod', 'pods', true, {
    shortNames: ['po'],
    subresources: ['status', 'proxy', 'log'],
    categories: ['all'],
  }),
  res('', 'v1', 'Event', 'events', true, { shortNames: ['ev'] }),
  res('', 'v1', 'ServiceAccount', 'serviceaccounts', true, { shortNames: ['sa'], subresources: ['token'] }),
  res('apps', 'v1', 'Deployment', 'deployments', true, {
    shortNames: ['deploy'],
    subresources: ['status', 'scale'],
    generation: true,
    categories: ['all'],
  }),
  res('apps', 'v1', 'ReplicaSet', 'replicasets', true, {
    shortNames: ['rs'],
    subresources: ['status', 'scale'],
    generation: true,
    categories: ['all'],
  }),
  res('apps', 'v1', 'StatefulSet', 'statefulsets', true, {
    shortNames: ['sts'],
    subresources: ['status', 'scale'],
    generation: true,
    categories: ['all'],
  }),
  res('apps', 'v1', 'DaemonSet', 'daemonsets', true, {
    shortNames: ['ds'],
    subresources: ['status'],
    generation: true,
    categories: ['all'],
  }),
  res('apps', 'v1', 'ControllerRevision', 'controllerrevisions', true),
  res('batch', 'v1', 'Job', 'jobs', true, {
    subresources: ['status'],
    generation: true,
    categories: ['all'],
  }),
  res('coordination.k8s.io', 'v1', 'Lease', 'leases', true),
  res('rbac.authorization.k8s.io', 'v1', 'Role', 'roles', true),
  res('rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings', true),
  res('rbac.authorization.k8s.io', 'v1', 'ClusterRole', 'clusterroles', false),
  res('rbac.authorization.k8s.io', 'v1', 'ClusterRoleBinding', 'clusterrolebindings', false),
  res('authorization.k8s.io', 'v1', 'SelfSubjectAccessReview', 'selfsubjectaccessreviews', false, {
    verbs: ['create'],
  }),
  res('authorization.k8s.io', 'v1', 'SelfSubjectRulesReview', 'selfsubjectrulesreviews', false, {
    verbs: ['create'],
  }),
  res('authentication.k8s.io', 'v1', 'SelfSubjectReview', 'selfsubjectreviews', false, { verbs: ['create'] }),
  res('networking.k8s.io', 'v1', 'Ingress', 'ingresses', true, {
    shortNames: ['ing'],
    subresources: ['status'],
    generation: true,
  }),
  res('gateway.networking.k8s.io', 'v1', 'HTTPRoute', 'httproutes', true, {
    subresources: ['status'],
    generation: true,
    categories: ['gateway-api'],
  }),
];

export function apiVersionOf(r: ResourceInfo): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

/** 'deployments.apps', 'pods': how RBAC messages and Status details name a resource. */
export function qualifiedName(r: ResourceInfo): string {
  return r.group ? `${r.plural}.${r.group}` : r.plural;
}

const byPath = new Map<string, ResourceInfo>();
for (const r of RESOURCES) {
  byPath.set(`${r.group}/${r.version}/${r.plural}`, r);
}

export function findResource(group: string, version: string, plural: string): ResourceInfo | undefined {
  return byPath.get(`${group}/${version}/${plural}`);
}

export function resourceByKind(kind: string): ResourceInfo {
  const r = RESOURCES.find((x) => x.kind === kind);
  if (!r) throw new Error(`unknown kind ${kind}`);
  return r;
}

export const GROUP_VERSIONS: readonly { group: string; version: string }[] = [
  ...new Map(
    RESOURCES.map((r) => [`${r.group}/${r.version}`, { group: r.group, version: r.version }]),
  ).values(),
];
