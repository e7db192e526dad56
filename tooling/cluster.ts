/**
 * One way to start "a cluster" for tests, benchmarks and the rehearsal, by kind:
 * - `kube-sim` (default): the embedded API server, fast, with the traffic data plane;
 * - `real`: kube-apiserver, controllers, scheduler, etcd and KWOK nodes (tooling/control-plane).
 * Both give an admin kubeconfig and `kubeconfigFor`, which makes a ServiceAccount bound to a Role
 * through the API and returns a kubeconfig with its TokenRequest token, so a test runs an action
 * with exactly the permissions its README documents.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AdminApi,
  adminApi,
  findControlPlane,
  kubeconfigYaml,
  startRealCluster,
} from './control-plane/index.ts';
import { type KubeSim, startKubeSim } from './kube-sim/index.ts';
import type { ImageBehaviour } from './kube-sim/types.ts';

export type ClusterKind = 'kube-sim' | 'real';

export interface ClusterOptions {
  kind?: ClusterKind;
  namespaces?: string[];
  images?: ImageBehaviour[];
  /** Simulated delays (image pull, start, readiness) run this many times faster. */
  timeScale?: number;
}

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

export interface Cluster {
  readonly kind: ClusterKind;
  readonly httpsUrl: string;
  readonly caCert: string;
  /** Admin bearer token. */
  readonly token: string;
  readonly kubeconfigPath: string;
  readonly kubeconfig: string;
  readonly timeScale: number;
  /** The embedded server, for tests that use its extensions (faults, traffic, peek); kube-sim only. */
  readonly sim: KubeSim | undefined;
  /** GET/POST/PUT/PATCH/DELETE as the admin; JSON in and out. */
  readonly api: AdminApi;
  /** Creates the namespace (if needed), waits until pods can be created in it. */
  createNamespace(name: string): Promise<void>;
  /**
   * A ServiceAccount `name` in `namespace` bound to a Role with `rules` (and, for `clusterRules`,
   * a ClusterRole bound cluster-wide), with a kubeconfig file for its token.
   */
  kubeconfigFor(o: {
    namespace: string;
    name: string;
    rules: PolicyRule[];
    clusterRules?: PolicyRule[];
  }): Promise<string>;
  close(): Promise<void>;
}

/**
 * The kinds a suite should run on: both when the real control plane is built; under CI=true the
 * real one is required, so a missing build fails instead of passing silently.
 */
export function clusterKinds(): ClusterKind[] {
  const found = findControlPlane();
  if ('binDir' in found) return ['kube-sim', 'real'];
  if (process.env.CI === 'true') return ['kube-sim', 'real'];
  if (!warned) {
    warned = true;
    console.warn(`skipping the real-cluster runs: ${found.missing}`);
  }
  return ['kube-sim'];
}
let warned = false;

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const kind = options.kind ?? 'kube-sim';
  let base: {
    httpsUrl: string;
    caCert: string;
    token: string;
    kubeconfigPath: string;
    kubeconfig: string;
    timeScale: number;
    close(): Promise<void>;
  };
  let sim: KubeSim | undefined;
  if (kind === 'kube-sim') {
    sim = await startKubeSim({
      ...(options.images ? { images: options.images } : {}),
      ...(options.timeScale ? { timeScale: options.timeScale } : {}),
    });
    base = sim;
  } else {
    base = await startRealCluster({
      ...(options.images ? { images: options.images } : {}),
      ...(options.timeScale ? { timeScale: options.timeScale } : {}),
    });
  }
  const api = adminApi(base.httpsUrl, base.token, base.caCert);
  const dir = mkdtempSync(join(tmpdir(), 'cluster-creds-'));
  let files = 0;

  const must = async (
    what: string,
    p: Promise<{ status: number; body: unknown }>,
    okStatuses = [200, 201],
  ) => {
    const r = await p;
    if (!okStatuses.includes(r.status))
      throw new Error(`${what}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };

  const createNamespace = async (name: string) => {
    await must(
      `create namespace ${name}`,
      api('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } }),
      [200, 201, 409],
    );
    // The ServiceAccount controller creates "default"; pod creation waits for it.
    for (let delay = 20; ; delay = Math.min(delay * 2, 200)) {
      const r = await api('GET', `/api/v1/namespaces/${name}/serviceaccounts/default`);
      if (r.status === 200) return;
      await new Promise((res) => setTimeout(res, delay));
    }
  };

  const upsert = async (what: string, path: string, obj: { metadata: { name: string } }) => {
    const r = await api('POST', path, obj);
    if (r.status === 409) await must(what, api('PUT', `${path}/${obj.metadata.name}`, obj));
    else if (r.status >= 300) throw new Error(`${what}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  };

  const kubeconfigFor: Cluster['kubeconfigFor'] = async ({ namespace, name, rules, clusterRules }) => {
    await createNamespace(namespace);
    const subject = [{ kind: 'ServiceAccount', name, namespace }];
    await upsert(`serviceaccount ${name}`, `/api/v1/namespaces/${namespace}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name },
    } as never);
    const rbac = `/apis/rbac.authorization.k8s.io/v1`;
    await upsert(`role ${name}`, `${rbac}/namespaces/${namespace}/roles`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name },
      rules,
    } as never);
    await upsert(`rolebinding ${name}`, `${rbac}/namespaces/${namespace}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: subject,
    } as never);
    if (clusterRules?.length) {
      const cname = `${namespace}-${name}`;
      await upsert(`clusterrole ${cname}`, `${rbac}/clusterroles`, {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: cname },
        rules: clusterRules,
      } as never);
      await upsert(`clusterrolebinding ${cname}`, `${rbac}/clusterrolebindings`, {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: cname },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: cname },
        subjects: subject,
      } as never);
    }
    const review = (await must(
      `token for ${name}`,
      api('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { expirationSeconds: 86_400 },
      }),
    )) as { status: { token: string } };
    const file = join(dir, `kubeconfig-${++files}-${namespace}-${name}`);
    writeFileSync(
      file,
      kubeconfigYaml(base.httpsUrl, base.caCert, `${namespace}-${name}`, review.status.token, namespace),
      { mode: 0o600 },
    );
    return file;
  };

  for (const ns of options.namespaces ?? []) await createNamespace(ns);

  return {
    kind,
    httpsUrl: base.httpsUrl,
    caCert: base.caCert,
    token: base.token,
    kubeconfigPath: base.kubeconfigPath,
    kubeconfig: base.kubeconfig,
    timeScale: base.timeScale,
    sim,
    api,
    createNamespace,
    kubeconfigFor,
    close: async () => {
      rmSync(dir, { recursive: true, force: true });
      await base.close();
    },
  };
}
