/**
 * Authentication and RBAC as the real API server does them: bearer tokens (the admin token, the
 * `users` option, ServiceAccount tokens from TokenRequest), Roles/ClusterRoles and their bindings
 * evaluated with the rules of k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac, and the
 * TokenRequest and SelfSubjectAccessReview endpoints.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isObject } from './patch.ts';
import { resourceByKind } from './resources.ts';
import { ApiError } from './status.ts';
import { rfc3339, type Store } from './store.ts';
import type { JsonObject, KubeObject, SimUser } from './types.ts';

const ROLES = resourceByKind('Role');
const ROLE_BINDINGS = resourceByKind('RoleBinding');
const CLUSTER_ROLES = resourceByKind('ClusterRole');
const CLUSTER_ROLE_BINDINGS = resourceByKind('ClusterRoleBinding');
const SERVICE_ACCOUNTS = resourceByKind('ServiceAccount');

export interface Identity {
  name: string;
  groups: string[];
  /** The admin token: system:masters, never asked. */
  admin: boolean;
  /**
   * A `users` entry with namespaces: the namespaces it may touch without any RBAC object (the
   * option kube-sim had before RBAC); RBAC bindings can grant it more.
   */
  namespaces?: string[];
  /** A `users` entry without namespaces: every request (the option's old meaning). */
  allNamespaces?: boolean;
}

/** What a request asks to do, in the terms of authorizer.Attributes. */
export interface Attributes {
  verb: string;
  resourceRequest: boolean;
  apiGroup: string;
  resource: string;
  subresource: string;
  name: string;
  namespace: string;
  path: string;
}

export interface PolicyRule {
  verbs?: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

interface Subject {
  kind?: string;
  name?: string;
  namespace?: string;
}

const has = (list: string[] | undefined, v: string) => (list ?? []).includes(v);

function verbMatches(rule: PolicyRule, verb: string): boolean {
  return has(rule.verbs, '*') || has(rule.verbs, verb);
}

function groupMatches(rule: PolicyRule, group: string): boolean {
  return has(rule.apiGroups, '*') || has(rule.apiGroups, group);
}

function resourceMatches(rule: PolicyRule, combined: string, subresource: string): boolean {
  for (const r of rule.resources ?? []) {
    if (r === '*' || r === combined) return true;
    if (subresource && r === `*/${subresource}`) return true;
  }
  return false;
}

function nameMatches(rule: PolicyRule, name: string): boolean {
  const names = rule.resourceNames ?? [];
  return names.length === 0 || names.includes(name);
}

function nonResourceMatches(rule: PolicyRule, path: string): boolean {
  for (const u of rule.nonResourceURLs ?? []) {
    if (u === '*' || u === path) return true;
    if (u.endsWith('*') && path.startsWith(u.slice(0, -1))) return true;
  }
  return false;
}

function ruleAllows(a: Attributes, rule: PolicyRule): boolean {
  if (!verbMatches(rule, a.verb)) return false;
  if (!a.resourceRequest) return nonResourceMatches(rule, a.path);
  const combined = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  return (
    groupMatches(rule, a.apiGroup) &&
    resourceMatches(rule, combined, a.subresource) &&
    nameMatches(rule, a.name)
  );
}

function appliesTo(id: Identity, s: Subject, namespace: string): boolean {
  switch (s.kind) {
    case 'User':
      return s.name === id.name;
    case 'Group':
      return id.groups.includes(s.name ?? '');
    case 'ServiceAccount': {
      const ns = s.namespace || namespace;
      return !!ns && id.name === `system:serviceaccount:${ns}:${s.name}`;
    }
    default:
      return false;
  }
}

function describeSubject(s: Subject, bindingNamespace: string): string {
  if (s.kind === 'ServiceAccount') return `ServiceAccount "${s.name}/${s.namespace || bindingNamespace}"`;
  return `${s.kind} "${s.name}"`;
}

export interface Decision {
  allowed: boolean;
  reason: string;
}

/** RBAC's decision, with the real reason text ("RBAC: allowed by ...", or the errors met). */
export function authorize(store: Store, id: Identity, a: Attributes): Decision {
  if (id.admin || id.allNamespaces) return { allowed: true, reason: '' };
  if (a.resourceRequest && a.namespace && id.namespaces?.includes(a.namespace)) {
    return { allowed: true, reason: '' };
  }
  if (
    a.resourceRequest &&
    id.namespaces?.includes(a.name) &&
    a.resource === 'namespaces' &&
    !a.subresource &&
    (a.verb === 'get' || a.verb === 'watch')
  ) {
    return { allowed: true, reason: '' };
  }
  const errors: string[] = [];
  const rulesOf = (kind: string | undefined, name: string, namespace: string): PolicyRule[] | undefined => {
    const role =
      kind === 'ClusterRole'
        ? store.get(CLUSTER_ROLES, undefined, name)
        : kind === 'Role'
          ? store.get(ROLES, namespace, name)
          : undefined;
    if (!role) {
      errors.push(
        kind === 'ClusterRole'
          ? `clusterrole.rbac.authorization.k8s.io "${name}" not found`
          : `role.rbac.authorization.k8s.io "${name}" not found`,
      );
      return undefined;
    }
    return (role['rules'] ?? []) as PolicyRule[];
  };
  const visit = (binding: KubeObject, namespaced: boolean): string | undefined => {
    const subjects = (binding['subjects'] ?? []) as Subject[];
    const bns = namespaced ? binding.metadata.namespace! : '';
    const subject = subjects.find((s) => appliesTo(id, s, bns));
    if (!subject) return undefined;
    const ref = (binding['roleRef'] ?? {}) as { kind?: string; name?: string };
    const rules = rulesOf(ref.kind, ref.name ?? '', bns);
    if (!rules?.some((rule) => ruleAllows(a, rule))) return undefined;
    return namespaced
      ? `RoleBinding "${binding.metadata.name}/${bns}" of ${ref.kind} "${ref.name}" to ${describeSubject(subject, bns)}`
      : `ClusterRoleBinding "${binding.metadata.name}" of ${ref.kind} "${ref.name}" to ${describeSubject(subject, '')}`;
  };
  const byName = (x: KubeObject, y: KubeObject) => x.metadata.name!.localeCompare(y.metadata.name!);
  for (const b of store.list(CLUSTER_ROLE_BINDINGS).sort(byName)) {
    const source = visit(b, false);
    if (source) return { allowed: true, reason: `RBAC: allowed by ${source}` };
  }
  if (a.namespace) {
    for (const b of store.list(ROLE_BINDINGS, a.namespace).sort(byName)) {
      const source = visit(b, true);
      if (source) return { allowed: true, reason: `RBAC: allowed by ${source}` };
    }
  }
  const reason =
    errors.length === 0 ? '' : errors.length === 1 ? `RBAC: ${errors[0]}` : `RBAC: [${errors.join(', ')}]`;
  return { allowed: false, reason };
}

/** The 403 the real server writes (responsewriters.ForbiddenStatusError). */
export function forbiddenError(id: Identity, a: Attributes, reason: string): ApiError {
  let msg: string;
  if (!a.resourceRequest) msg = `User "${id.name}" cannot ${a.verb} path "${a.path}"`;
  else {
    const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
    const scope = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
    msg = `User "${id.name}" cannot ${a.verb} resource "${resource}" in API group "${a.apiGroup}" ${scope}`;
  }
  if (reason) msg = `${msg}: ${reason}`;
  const qualified = a.resourceRequest ? (a.apiGroup ? `${a.resource}.${a.apiGroup}` : a.resource) : '';
  const message = !qualified
    ? `forbidden: ${msg}`
    : a.name
      ? `${qualified} "${a.name}" is forbidden: ${msg}`
      : `${qualified} is forbidden: ${msg}`;
  return new ApiError(403, 'Forbidden', message, {
    ...(a.name ? { name: a.name } : {}),
    group: a.apiGroup,
    kind: a.resource,
  });
}

// ---- tokens -----------------------------------------------------------------------------------

const ISSUER = 'https://kubernetes.default.svc.cluster.local';

function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

/** Signs and checks ServiceAccount tokens: JWTs shaped like the real ones (HS256 with a per-server key). */
export class TokenIssuer {
  private readonly key = randomBytes(32);

  issue(
    sa: KubeObject,
    audiences: string[],
    expirationSeconds: number,
    nowMs: number,
  ): { token: string; exp: number } {
    const iat = Math.floor(nowMs / 1000);
    const exp = iat + expirationSeconds;
    const header = b64url(JSON.stringify({ alg: 'HS256', kid: 'kube-sim' }));
    const payload = b64url(
      JSON.stringify({
        aud: audiences,
        exp,
        iat,
        iss: ISSUER,
        jti: randomBytes(16).toString('hex'),
        'kubernetes.io': {
          namespace: sa.metadata.namespace,
          serviceaccount: { name: sa.metadata.name, uid: sa.metadata.uid },
        },
        nbf: iat,
        sub: `system:serviceaccount:${sa.metadata.namespace}:${sa.metadata.name}`,
      }),
    );
    const sig = createHmac('sha256', this.key).update(`${header}.${payload}`).digest('base64url');
    return { token: `${header}.${payload}.${sig}`, exp };
  }

  /** The identity of a valid token whose ServiceAccount still exists with the same uid. */
  verify(store: Store, token: string, nowMs: number): Identity | undefined {
    const parts = token.split('.');
    if (parts.length !== 3) return undefined;
    const expected = createHmac('sha256', this.key).update(`${parts[0]}.${parts[1]}`).digest();
    const given = Buffer.from(parts[2]!, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    let claims: JsonObject;
    try {
      claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString()) as JsonObject;
    } catch {
      return undefined;
    }
    if (typeof claims['exp'] !== 'number' || claims['exp'] * 1000 <= nowMs) return undefined;
    const k = claims['kubernetes.io'];
    if (!isObject(k) || !isObject(k['serviceaccount'])) return undefined;
    const ns = String(k['namespace']);
    const name = String(k['serviceaccount']['name']);
    const sa = store.get(SERVICE_ACCOUNTS, ns, name);
    if (!sa || sa.metadata.uid !== k['serviceaccount']['uid']) return undefined;
    return {
      name: `system:serviceaccount:${ns}:${name}`,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
      admin: false,
    };
  }
}

export function identityOfUser(u: SimUser): Identity {
  return {
    name: u.name,
    groups: ['system:authenticated'],
    admin: false,
    ...(u.namespaces ? { namespaces: u.namespaces } : { allNamespaces: true }),
  };
}

export const ADMIN: Identity = {
  name: 'kube-sim-admin',
  groups: ['system:masters', 'system:authenticated'],
  admin: true,
};

function invalidSpec(kind: string, group: string, field: string, reason: string, message: string): ApiError {
  return new ApiError(422, 'Invalid', `${kind}.${group} "" is invalid: ${field}: ${message}`, {
    group,
    kind,
    causes: [{ reason, message, field }],
  });
}

/** POST serviceaccounts/<name>/token: a TokenRequest answered with a bound token. */
export function tokenRequest(
  issuer: TokenIssuer,
  sa: KubeObject,
  body: JsonObject,
  nowMs: number,
): JsonObject {
  const spec = isObject(body['spec']) ? body['spec'] : {};
  const expirationSeconds =
    spec['expirationSeconds'] === undefined ? 3600 : Number(spec['expirationSeconds']);
  if (!Number.isInteger(expirationSeconds) || expirationSeconds < 600) {
    throw invalidSpec(
      'TokenRequest',
      'authentication.k8s.io',
      'spec.expirationSeconds',
      'FieldValueInvalid',
      'Invalid value: ' +
        String(spec['expirationSeconds']) +
        ': may not specify a duration less than 10 minutes',
    );
  }
  if (expirationSeconds > 2 ** 32) {
    throw invalidSpec(
      'TokenRequest',
      'authentication.k8s.io',
      'spec.expirationSeconds',
      'FieldValueTooLong',
      `Too long: may not specify a duration larger than 2^32 seconds`,
    );
  }
  const audiences =
    Array.isArray(spec['audiences']) && spec['audiences'].length > 0
      ? spec['audiences'].map(String)
      : [ISSUER];
  const { token, exp } = issuer.issue(sa, audiences, expirationSeconds, nowMs);
  return {
    kind: 'TokenRequest',
    apiVersion: 'authentication.k8s.io/v1',
    metadata: { name: sa.metadata.name, namespace: sa.metadata.namespace, creationTimestamp: null },
    spec: { audiences, expirationSeconds, boundObjectRef: spec['boundObjectRef'] ?? null },
    status: { token, expirationTimestamp: rfc3339(exp * 1000) },
  };
}

/** POST selfsubjectaccessreviews: what `kubectl auth can-i` asks. */
export function selfSubjectAccessReview(store: Store, id: Identity, body: JsonObject): JsonObject {
  const spec = isObject(body['spec']) ? body['spec'] : {};
  const ra = isObject(spec['resourceAttributes']) ? spec['resourceAttributes'] : undefined;
  const nra = isObject(spec['nonResourceAttributes']) ? spec['nonResourceAttributes'] : undefined;
  if (!ra && !nra) {
    throw new ApiError(
      422,
      'Invalid',
      'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified',
      {
        group: 'authorization.k8s.io',
        kind: 'SelfSubjectAccessReview',
        causes: [
          {
            reason: 'FieldValueInvalid',
            message:
              'Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified',
            field: 'spec.resourceAttributes',
          },
        ],
      },
    );
  }
  const a: Attributes = ra
    ? {
        verb: String(ra['verb'] ?? ''),
        resourceRequest: true,
        apiGroup: String(ra['group'] ?? ''),
        resource: String(ra['resource'] ?? ''),
        subresource: String(ra['subresource'] ?? ''),
        name: String(ra['name'] ?? ''),
        namespace: String(ra['namespace'] ?? ''),
        path: '',
      }
    : {
        verb: String(nra!['verb'] ?? ''),
        resourceRequest: false,
        apiGroup: '',
        resource: '',
        subresource: '',
        name: '',
        namespace: '',
        path: String(nra!['path'] ?? ''),
      };
  const d = id.admin ? { allowed: true, reason: '' } : authorize(store, id, a);
  return {
    kind: 'SelfSubjectAccessReview',
    apiVersion: 'authorization.k8s.io/v1',
    metadata: { creationTimestamp: null },
    spec,
    status: { allowed: d.allowed, ...(d.reason ? { reason: d.reason } : {}) },
  };
}

/** POST selfsubjectrulesreviews: every rule that applies to the caller in a namespace (`kubectl auth can-i --list`). */
export function selfSubjectRulesReview(store: Store, id: Identity, body: JsonObject): JsonObject {
  const spec = isObject(body['spec']) ? body['spec'] : {};
  const namespace = String(spec['namespace'] ?? '');
  const resourceRules: PolicyRule[] = [];
  const nonResourceRules: PolicyRule[] = [];
  const add = (rules: PolicyRule[]) => {
    for (const r of rules) {
      if (r.nonResourceURLs?.length)
        nonResourceRules.push({ verbs: r.verbs ?? [], nonResourceURLs: r.nonResourceURLs });
      else {
        resourceRules.push({
          verbs: r.verbs ?? [],
          apiGroups: r.apiGroups ?? [],
          resources: r.resources ?? [],
          ...(r.resourceNames?.length ? { resourceNames: r.resourceNames } : {}),
        });
      }
    }
  };
  const rulesOf = (kind: string | undefined, name: string, ns: string) => {
    const role =
      kind === 'ClusterRole'
        ? store.get(CLUSTER_ROLES, undefined, name)
        : kind === 'Role'
          ? store.get(ROLES, ns, name)
          : undefined;
    return ((role?.['rules'] ?? []) as PolicyRule[]).map((r) => ({ ...r }));
  };
  const byName = (x: KubeObject, y: KubeObject) => x.metadata.name!.localeCompare(y.metadata.name!);
  const bindings = [
    ...store
      .list(CLUSTER_ROLE_BINDINGS)
      .sort(byName)
      .map((b) => ({ b, ns: '' })),
    ...(namespace
      ? store
          .list(ROLE_BINDINGS, namespace)
          .sort(byName)
          .map((b) => ({ b, ns: namespace }))
      : []),
  ];
  if (id.admin)
    add([
      { apiGroups: ['*'], resources: ['*'], verbs: ['*'] },
      { nonResourceURLs: ['*'], verbs: ['*'] },
    ]);
  for (const { b, ns } of bindings) {
    const subjects = (b['subjects'] ?? []) as Subject[];
    if (!subjects.some((s) => appliesTo(id, s, ns))) continue;
    const ref = (b['roleRef'] ?? {}) as { kind?: string; name?: string };
    add(rulesOf(ref.kind, ref.name ?? '', ns));
  }
  return {
    kind: 'SelfSubjectRulesReview',
    apiVersion: 'authorization.k8s.io/v1',
    metadata: { creationTimestamp: null },
    spec,
    status: { resourceRules, nonResourceRules, incomplete: false },
  };
}

// ---- bootstrap policy -------------------------------------------------------------------------

const READ = ['get', 'list', 'watch'];
const WRITE = ['create', 'delete', 'deletecollection', 'patch', 'update'];

const VIEW_RULES: PolicyRule[] = [
  {
    apiGroups: [''],
    resources: [
      'configmaps',
      'endpoints',
      'persistentvolumeclaims',
      'pods',
      'replicationcontrollers',
      'serviceaccounts',
      'services',
      'pods/log',
      'pods/status',
      'services/status',
      'events',
      'namespaces',
    ],
    verbs: READ,
  },
  {
    apiGroups: ['apps'],
    resources: [
      'deployments',
      'replicasets',
      'deployments/scale',
      'replicasets/scale',
      'deployments/status',
      'statefulsets',
      'daemonsets',
    ],
    verbs: READ,
  },
  { apiGroups: ['batch'], resources: ['jobs', 'cronjobs', 'jobs/status'], verbs: READ },
  {
    apiGroups: ['networking.k8s.io'],
    resources: ['ingresses', 'ingresses/status', 'networkpolicies'],
    verbs: READ,
  },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: READ },
];

const EDIT_RULES: PolicyRule[] = [
  ...VIEW_RULES,
  { apiGroups: [''], resources: ['secrets'], verbs: READ },
  {
    apiGroups: [''],
    resources: [
      'configmaps',
      'endpoints',
      'pods',
      'secrets',
      'serviceaccounts',
      'services',
      'services/proxy',
      'pods/proxy',
    ],
    verbs: WRITE,
  },
  { apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'] },
  {
    apiGroups: ['apps'],
    resources: [
      'deployments',
      'replicasets',
      'deployments/scale',
      'replicasets/scale',
      'deployments/rollback',
      'statefulsets',
      'daemonsets',
    ],
    verbs: WRITE,
  },
  { apiGroups: ['batch'], resources: ['jobs', 'cronjobs'], verbs: WRITE },
  { apiGroups: ['networking.k8s.io'], resources: ['ingresses', 'networkpolicies'], verbs: WRITE },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: WRITE },
];

const ADMIN_RULES: PolicyRule[] = [
  ...EDIT_RULES,
  {
    apiGroups: ['rbac.authorization.k8s.io'],
    resources: ['roles', 'rolebindings'],
    verbs: [...READ, ...WRITE],
  },
  { apiGroups: ['authorization.k8s.io'], resources: ['localsubjectaccessreviews'], verbs: ['create'] },
];

/** The default ClusterRoles and ClusterRoleBindings every cluster starts with (trimmed to what kube-sim serves). */
export function bootstrapPolicy(store: Store): void {
  const roles: Record<string, PolicyRule[]> = {
    'cluster-admin': [
      { apiGroups: ['*'], resources: ['*'], verbs: ['*'] },
      { nonResourceURLs: ['*'], verbs: ['*'] },
    ],
    admin: ADMIN_RULES,
    edit: EDIT_RULES,
    view: VIEW_RULES,
    'system:basic-user': [
      {
        apiGroups: ['authorization.k8s.io'],
        resources: ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'],
        verbs: ['create'],
      },
      { apiGroups: ['authentication.k8s.io'], resources: ['selfsubjectreviews'], verbs: ['create'] },
    ],
    'system:discovery': [
      {
        nonResourceURLs: [
          '/api',
          '/api/*',
          '/apis',
          '/apis/*',
          '/healthz',
          '/livez',
          '/openapi',
          '/openapi/*',
          '/readyz',
          '/version',
          '/version/',
        ],
        verbs: ['get'],
      },
    ],
    'system:public-info-viewer': [
      { nonResourceURLs: ['/healthz', '/livez', '/readyz', '/version', '/version/'], verbs: ['get'] },
    ],
    'system:service-account-issuer-discovery': [
      {
        nonResourceURLs: [
          '/.well-known/openid-configuration',
          '/.well-known/openid-configuration/',
          '/openid/v1/jwks',
          '/openid/v1/jwks/',
        ],
        verbs: ['get'],
      },
    ],
  };
  const labels = { 'kubernetes.io/bootstrapping': 'rbac-defaults' };
  const annotations = { 'rbac.authorization.kubernetes.io/autoupdate': 'true' };
  for (const [name, rules] of Object.entries(roles)) {
    if (store.get(CLUSTER_ROLES, undefined, name)) continue;
    store.create(CLUSTER_ROLES, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name, labels, annotations },
      rules,
    });
  }
  const bindings: Record<string, { role: string; group: string }> = {
    'cluster-admin': { role: 'cluster-admin', group: 'system:masters' },
    'system:basic-user': { role: 'system:basic-user', group: 'system:authenticated' },
    'system:discovery': { role: 'system:discovery', group: 'system:authenticated' },
    'system:public-info-viewer': { role: 'system:public-info-viewer', group: 'system:authenticated' },
    'system:service-account-issuer-discovery': {
      role: 'system:service-account-issuer-discovery',
      group: 'system:serviceaccounts',
    },
  };
  for (const [name, b] of Object.entries(bindings)) {
    if (store.get(CLUSTER_ROLE_BINDINGS, undefined, name)) continue;
    store.create(CLUSTER_ROLE_BINDINGS, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name, labels, annotations },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: b.role },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: b.group }],
    });
  }
}
