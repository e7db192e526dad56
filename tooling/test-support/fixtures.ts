/**
 * Test set-up written once: a kube-sim, a cluster of either kind, a throwaway PostgreSQL server and
 * a work directory, each started before the tests of the file (or of the describe block it is called
 * in) and torn down after them, plus kubectl as the admin and the app manifests the deploy suites
 * write.
 *
 * The servers exist only once beforeAll has run, but a suite names them when it is collected; the
 * fixtures hand out a stand-in that forwards to the started server, so a test reads `sim.faults` or
 * `cluster.kubeconfigFor(...)` as it would on the real object.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe } from '@jest/globals';
import { type Cluster, type ClusterKind, type ClusterOptions, startCluster } from '../cluster.ts';
import { type KubeSim, type KubeSimOptions, startKubeSim } from '../kube-sim/index.ts';
import {
  POSTGRES_INSTALL_HINT,
  type PostgresServer,
  postgresAvailable,
  type StartPostgresOptions,
  startPostgres,
} from '../local-services/postgres.ts';
import { readmeRole } from '../readme-roles.ts';
import { REPO_ROOT } from '../runners/action-runner.ts';

const run = promisify(execFile);

/** A real cluster start, KWOK nodes included, takes well over jest's default hook timeout. */
const START_TIMEOUT_MS = 180_000;

/** Forwards every property to what `current()` returns once it is there. */
function standIn<T extends object>(what: string, current: () => T | undefined): T {
  return new Proxy({} as T, {
    get(_, property) {
      // Not a promise: `await` or an async return probes `then` and must not start the question.
      if (property === 'then') return undefined;
      const target = current();
      if (!target) throw new Error(`${what} is used before its beforeAll started it`);
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** A directory for the suite's files, removed after its last test. */
export function useWorkDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A server for the suite (LocalGitHub, LocalSlack, ...): `start` runs before its tests, `close` after. */
export function useServer<T extends { close(): Promise<void> }>(what: string, start: () => Promise<T>): T {
  let server: T | undefined;
  beforeAll(async () => {
    server = await start();
  }, START_TIMEOUT_MS);
  afterAll(async () => {
    await server?.close();
  });
  return standIn(what, () => server);
}

/**
 * A repository for the workflow runner: `.github/workflows/` to write callers into and, with
 * `exampleK8s`, examples/shop's k8s/ base and overlays.
 */
export function useWorkflowWorkspace(prefix: string, o: { exampleK8s?: boolean } = {}): string {
  const workspace = useWorkDir(prefix);
  mkdirSync(join(workspace, '.github', 'workflows'), { recursive: true });
  if (o.exampleK8s)
    cpSync(join(REPO_ROOT, 'examples', 'shop', 'k8s'), join(workspace, 'k8s'), { recursive: true });
  return workspace;
}

/** `.github/workflows/caller.yml` in `workspace`: one job that calls `workflow` with `inputs`. */
export function writeCaller(
  workspace: string,
  inputs: Record<string, string | boolean>,
  workflow = 'deploy.yml',
): string {
  const file = join(workspace, '.github', 'workflows', 'caller.yml');
  writeFileSync(
    file,
    [
      'on: push',
      'jobs:',
      '  production:',
      `    uses: acme/pipeline/.github/workflows/${workflow}@main`,
      '    with:',
      ...Object.entries(inputs).map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`),
      '    secrets: inherit',
    ].join('\n'),
  );
  return file;
}

/** kube-sim for the suite. */
export function useKubeSim(options: KubeSimOptions = {}): KubeSim {
  return useServer('kube-sim', () => startKubeSim(options));
}

/** A cluster of `kind` for the suite (one describe block of `describe.each(clusterKinds())`). */
export function useCluster(kind: ClusterKind, options: Omit<ClusterOptions, 'kind'> = {}): Cluster {
  return useClusters([kind], options).get(kind)!;
}

/**
 * A cluster of every kind, started side by side in one hook (a real control plane takes seconds,
 * kube-sim milliseconds); `onStarted` hears how long each took.
 */
export function useClusters(
  kinds: ClusterKind[],
  options: Omit<ClusterOptions, 'kind'> = {},
  onStarted?: (kind: ClusterKind, ms: number) => void,
): Map<ClusterKind, Cluster> {
  const started = new Map<ClusterKind, Cluster>();
  beforeAll(async () => {
    await Promise.all(
      kinds.map(async (kind) => {
        const t0 = Date.now();
        started.set(kind, await startCluster({ ...options, kind }));
        onStarted?.(kind, Date.now() - t0);
      }),
    );
  }, START_TIMEOUT_MS);
  afterAll(async () => {
    await Promise.all([...started.values()].map((c) => c.close()));
  });
  return new Map(kinds.map((kind) => [kind, standIn(`the ${kind} cluster`, () => started.get(kind))]));
}

/**
 * Per namespace, a kubeconfig of the ServiceAccount `name` bound there to exactly the Role that
 * `action`'s README documents; made on first use, then reused.
 */
export function readmeRoleKubeconfigs(
  cluster: Cluster,
  action: string,
  name = 'pipeline-deployer',
): (namespace: string) => Promise<string> {
  const made = new Map<string, Promise<string>>();
  return (namespace) => {
    let file = made.get(namespace);
    if (!file) {
      file = cluster.kubeconfigFor({ namespace, name, rules: readmeRole(action) });
      made.set(namespace, file);
    }
    return file;
  };
}

/** kubectl as the admin of `target`; applied YAML goes through files in `work`. */
export function kubectlFor(target: { readonly kubeconfigPath: string }, work: string) {
  let applied = 0;
  const kubectl = async (...args: string[]): Promise<string> => {
    const { stdout } = await run('kubectl', args, {
      env: { ...process.env, KUBECONFIG: target.kubeconfigPath },
    });
    return stdout;
  };
  const kubectlJson = async <T = Record<string, unknown>>(...args: string[]): Promise<T> =>
    JSON.parse(await kubectl(...args, '-o', 'json')) as T;
  /** `kubectl apply` of `yaml`, in `namespace` when one is given (else the objects' own). */
  const kubectlApply = async (namespace: string | undefined, yaml: string): Promise<void> => {
    const file = join(work, `apply-${++applied}.yaml`);
    writeFileSync(file, yaml);
    await kubectl('apply', ...(namespace ? ['-n', namespace] : []), '-f', file);
  };
  return { kubectl, kubectlJson, kubectlApply };
}

export interface PostgresFixture {
  /** Whether the PostgreSQL server binaries are on this machine. */
  readonly available: boolean;
  /** `describe`, or `describe.skip` when PostgreSQL is not available. */
  readonly suite: typeof describe;
  readonly server: PostgresServer;
  /** Run after each test, then forgotten: dropped databases, removed directories. */
  readonly cleanups: (() => Promise<void>)[];
}

/** A throwaway PostgreSQL server for the suite, when the binaries are here. */
export function usePostgres(options: StartPostgresOptions = {}): PostgresFixture {
  const available = postgresAvailable();
  let server: PostgresServer | undefined;
  const cleanups: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    if (available) server = await startPostgres(options);
  }, 120_000);
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });
  afterAll(async () => {
    await server?.stop();
  });
  return {
    available,
    suite: available ? describe : (describe.skip as typeof describe),
    server: standIn(available ? 'PostgreSQL' : `PostgreSQL (${POSTGRES_INSTALL_HINT})`, () => server),
    cleanups,
  };
}

/**
 * A Deployment of `replicas` pods labelled `app: <name>`, one container `web` running `image`
 * (listening on `port` when one is given), as YAML ending in a newline.
 */
export function deploymentYaml(
  o: { name?: string; replicas?: number; image?: string; port?: number } = {},
): string {
  const name = o.name ?? 'shop';
  return `apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}, labels: { app: ${name} } }
spec:
  replicas: ${o.replicas ?? 2}
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec:
      containers:
        - name: web
          image: ${o.image ?? 'registry.local/shop:v1'}
${o.port ? `          ports: [{ containerPort: ${o.port} }]\n` : ''}`;
}

/** A push of `sha` to main of acme/shop by `actor`, as the workflow runner's event. */
export function mainPush(o: { sha?: string; actor?: string } = {}) {
  return {
    name: 'push',
    ref: 'refs/heads/main',
    sha: o.sha ?? 'c'.repeat(40),
    repository: 'acme/shop',
    actor: o.actor ?? 'octocat',
    payload: {},
  };
}

export interface AppOptions {
  name?: string;
  replicas?: number;
  image?: string;
  /** progressDeadlineSeconds (default 600). */
  deadline?: number;
  logLevel?: string;
  /** The pods' terminationGracePeriodSeconds; the API server's default (30) when not given. */
  gracePeriod?: number;
  /** More YAML documents after the app's. */
  extra?: string;
}

/**
 * The app the deploy suites deploy, written to `<work>/<dir>/app.yaml`: a ConfigMap of settings, a
 * Deployment whose `web` container reads them, and its Service. Returns the directory.
 */
export function writeApp(work: string, dir: string, o: AppOptions = {}): string {
  const name = o.name ?? 'shop';
  const path = join(work, dir);
  mkdirSync(path, { recursive: true });
  const grace = o.gracePeriod === undefined ? '' : `\n      terminationGracePeriodSeconds: ${o.gracePeriod}`;
  writeFileSync(
    join(path, 'app.yaml'),
    `apiVersion: v1
kind: ConfigMap
metadata: { name: ${name}-settings }
data: { LOG_LEVEL: ${o.logLevel ?? 'info'} }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}, labels: { app: ${name} } }
spec:
  replicas: ${o.replicas ?? 3}
  progressDeadlineSeconds: ${o.deadline ?? 600}
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec:${grace}
      containers:
        - name: web
          image: ${o.image ?? 'registry.local/shop:v1'}
          envFrom: [{ configMapRef: { name: ${name}-settings } }]
          ports: [{ containerPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: ${name} }
spec:
  selector: { app: ${name} }
  ports: [{ port: 80, targetPort: 8080 }]
${o.extra ?? ''}`,
  );
  return path;
}
