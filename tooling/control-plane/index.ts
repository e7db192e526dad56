/**
 * A real Kubernetes control plane for tests, benchmarks and the rehearsal: etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler and KWOK (fake nodes whose pods follow kube-sim's image
 * behaviours), built from the Go modules in this folder by `build.sh` and started on free loopback
 * ports with TLS, RBAC, ServiceAccount tokens and the default admission chain.
 *
 *   const cluster = await startRealCluster({ images: [{ pattern: '*:crash*', mode: 'crash' }] });
 *   // cluster.kubeconfigPath, cluster.token (admin, system:masters), cluster.close()
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer as createHttpsServer, request as httpsRequest, type Server } from 'node:https';
import { type AddressInfo, createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ImageBehaviour } from '../kube-sim/types.ts';
import { stagesConfig, unschedulablePatterns } from './stages.ts';

const run = promisify(execFile);
const HERE = dirname(fileURLToPath(import.meta.url));
const BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'] as const;

export interface RealClusterOptions {
  images?: ImageBehaviour[];
  /** Simulated pull/start/ready delays of the image behaviours run this many times faster (default 1). */
  timeScale?: number;
  /** Namespaces to create (each waits for its default ServiceAccount). */
  namespaces?: string[];
  /** Fake nodes (default 3). */
  nodes?: number;
  /** Directory with the five binaries (default: the cache build.sh fills, or PIPELINE_CONTROL_PLANE_BIN). */
  binDir?: string;
  /** Where the components' logs go (default: a file per component in the cluster's directory). */
  log?: (component: string, line: string) => void;
}

export interface RealCluster {
  readonly httpsUrl: string;
  readonly caCert: string;
  /** Bearer token of the admin (group system:masters). */
  readonly token: string;
  readonly kubeconfigPath: string;
  readonly kubeconfig: string;
  /** Working directory: certificates, etcd data, component logs. */
  readonly dir: string;
  readonly timeScale: number;
  close(): Promise<void>;
}

/** The cache directory build.sh uses for the current go.mod/go.sum (same key). */
function controlPlaneCacheDir(): string {
  const key = createHash('sha256')
    .update(readFileSync(join(HERE, 'go.mod')))
    .update(readFileSync(join(HERE, 'go.sum')))
    .update(readFileSync(join(HERE, 'build.sh')))
    .digest('hex')
    .slice(0, 16);
  const cache =
    process.env.PIPELINE_CONTROL_PLANE_CACHE ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'pipeline', 'control-plane');
  return join(cache, key);
}

/** The Kubernetes release go.mod pins (what build.sh stamps into the binaries). */
function pinnedVersion(): string | undefined {
  return /^\s*k8s\.io\/kubernetes (v[\d.]+)\s*$/m.exec(readFileSync(join(HERE, 'go.mod'), 'utf8'))?.[1];
}

/** Where the built binaries are, or why there are none (with what to run). */
export function findControlPlane(): { binDir: string } | { missing: string } {
  const binDir = process.env.PIPELINE_CONTROL_PLANE_BIN ?? controlPlaneCacheDir();
  const absent = BINARIES.filter((b) => !existsSync(join(binDir, b)));
  if (absent.length === 0) return { binDir };
  return {
    missing:
      `the real control plane is not built (${absent.join(', ')} missing in ${binDir}); ` +
      'install Go 1.26 and run tooling/control-plane/build.sh (a cold build takes about 8 minutes on 2 cores)',
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT')
      throw new Error(
        'openssl is not installed; install it (apt-get install openssl) to start the real control plane',
      );
    throw new Error(`openssl ${args[0]} failed: ${e.stderr ?? e.message}`);
  }
}

interface Certificates {
  ca: string;
  caKey: string;
  serving: string;
  servingKey: string;
}

/** A CA and the API server's serving certificate (127.0.0.1, localhost, the in-cluster names). */
async function makeCertificates(dir: string): Promise<Certificates> {
  const p = (n: string) => join(dir, n);
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], dir);
  await openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      'ca.key',
      '-subj',
      '/CN=pipeline-test-ca',
      '-days',
      '30',
      '-out',
      'ca.crt',
    ],
    dir,
  );
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'serving.key'], dir);
  await openssl(
    ['req', '-new', '-key', 'serving.key', '-subj', '/CN=kube-apiserver', '-out', 'serving.csr'],
    dir,
  );
  writeFileSync(
    p('serving.ext'),
    'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n' +
      'extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n',
  );
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      'serving.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '30',
      '-extfile',
      'serving.ext',
      '-out',
      'serving.crt',
    ],
    dir,
  );
  return { ca: p('ca.crt'), caKey: p('ca.key'), serving: p('serving.crt'), servingKey: p('serving.key') };
}

export function kubeconfigYaml(
  server: string,
  caPem: string,
  user: string,
  token: string,
  namespace = 'default',
): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: real',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${Buffer.from(caPem).toString('base64')}`,
    'users:',
    `- name: ${user}`,
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: real',
    '  context:',
    '    cluster: real',
    `    user: ${user}`,
    `    namespace: ${namespace}`,
    'current-context: real',
    'preferences: {}',
    '',
  ].join('\n');
}

interface Component {
  name: string;
  child: ChildProcess;
  exited: Promise<number | null>;
}

// With setpriv (util-linux) each component gets SIGKILL when our process dies, however it dies
// (kill -9, a dropped terminal): nothing is left listening on loopback after a crashed run.
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

function startComponent(
  bin: string,
  name: string,
  args: string[],
  dir: string,
  log?: RealClusterOptions['log'],
): Component {
  const [command, argv] = SETPRIV
    ? [SETPRIV, ['--pdeathsig', 'KILL', '--', join(bin, name), ...args]]
    : [join(bin, name), args];
  const child = spawn(command, argv, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const file = createWriteStream(join(dir, `${name}.log`));
  const forward = (chunk: Buffer) => {
    file.write(chunk);
    if (log) for (const line of chunk.toString().split('\n')) if (line) log(name, line);
  };
  child.stdout?.on('data', forward);
  child.stderr?.on('data', forward);
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      file.end();
      resolve(code);
    });
    child.on('error', () => resolve(-1));
  });
  return { name, child, exited };
}

function tail(dir: string, name: string, lines = 15): string {
  try {
    return readFileSync(join(dir, `${name}.log`), 'utf8')
      .trimEnd()
      .split('\n')
      .slice(-lines)
      .join('\n');
  } catch {
    return '(no log)';
  }
}

async function waitFor(
  what: string,
  deadlineMs: number,
  probe: () => Promise<boolean>,
  died: Promise<string>,
): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  let stop = false;
  const death = died.then((why) => {
    if (!stop) throw new Error(why);
  });
  death.catch(() => {});
  for (let delay = 20; ; delay = Math.min(delay * 1.5, 250)) {
    const ok = await Promise.race([probe().catch(() => false), death.then(() => false)]);
    if (ok) {
      stop = true;
      return;
    }
    if (Date.now() > deadline)
      throw new Error(`${what} was not ready within ${Math.round(deadlineMs / 1000)}s`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Removes the directories of clusters whose starter died without cleaning up (its pid is gone). */
function removeAbandonedClusters(): void {
  for (const entry of readdirSync(tmpdir())) {
    if (!entry.startsWith('real-cluster-')) continue;
    const dir = join(tmpdir(), entry);
    let owner: number;
    try {
      owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8'));
    } catch {
      continue;
    }
    try {
      process.kill(owner, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** The admission webhook that keeps pods with an "unschedulable" image off every node. */
async function startUnschedulableWebhook(
  images: ImageBehaviour[],
  certs: Certificates,
): Promise<Server | undefined> {
  const patterns = unschedulablePatterns(images);
  if (patterns.length === 0) return undefined;
  const server = createHttpsServer(
    { cert: readFileSync(certs.serving), key: readFileSync(certs.servingKey) },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const review = JSON.parse(Buffer.concat(chunks).toString()) as {
          request: { uid: string; object: { spec?: { containers?: { image?: string }[] } } };
        };
        const images = (review.request.object.spec?.containers ?? []).map((c) => c.image ?? '');
        const hit = images.some((img) =>
          patterns.some((re) => new RegExp(re.source, re.flags.replace('g', '')).test(img)),
        );
        const patch = hit
          ? Buffer.from(
              JSON.stringify([
                { op: 'add', path: '/spec/nodeSelector', value: { 'pipeline.dev/no-such-node': 'true' } },
              ]),
            ).toString('base64')
          : undefined;
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            response: {
              uid: review.request.uid,
              allowed: true,
              ...(patch ? { patchType: 'JSONPatch', patch } : {}),
            },
          }),
        );
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

export type AdminApi = (
  method: string,
  path: string,
  body?: unknown,
  contentType?: string,
) => Promise<{ status: number; body: unknown }>;

/** JSON requests to the API server as the bearer of `token`, trusting only `ca`. */
export function adminApi(httpsUrl: string, token: string, ca: string): AdminApi {
  return (method, path, body, contentType = 'application/json') =>
    new Promise((resolve, reject) => {
      const req = httpsRequest(
        `${httpsUrl}${path}`,
        {
          method,
          ca,
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': contentType,
            accept: 'application/json',
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {}
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
        },
      );
      req.on('error', reject);
      if (body !== undefined) req.write(typeof body === 'string' ? body : JSON.stringify(body));
      req.end();
    });
}

export async function startRealCluster(options: RealClusterOptions = {}): Promise<RealCluster> {
  let binDir = options.binDir;
  if (!binDir) {
    const found = findControlPlane();
    if ('missing' in found) throw new Error(found.missing);
    binDir = found.binDir;
  }
  const timeScale = options.timeScale ?? 1;
  removeAbandonedClusters();
  const dir = mkdtempSync(join(tmpdir(), 'real-cluster-'));
  writeFileSync(join(dir, 'owner.pid'), String(process.pid));
  const components: Component[] = [];
  let webhook: Server | undefined;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    // Stop the clients of the API server first, etcd last.
    for (const c of [...components].reverse()) {
      c.child.kill('SIGTERM');
      const t = setTimeout(() => c.child.kill('SIGKILL'), 5000);
      await c.exited;
      clearTimeout(t);
    }
    webhook?.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const certs = await makeCertificates(dir);
    const caPem = readFileSync(certs.ca, 'utf8');
    const token = randomBytes(24).toString('hex');
    writeFileSync(join(dir, 'tokens.csv'), `${token},admin,admin,"system:masters"\n`);
    const sa = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    writeFileSync(join(dir, 'sa.key'), sa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(dir, 'sa.pub'), sa.publicKey.export({ type: 'spki', format: 'pem' }));
    const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
    const httpsUrl = `https://127.0.0.1:${apiPort}`;
    const api = adminApi(httpsUrl, token, caPem);
    const kubeconfig = kubeconfigYaml(httpsUrl, caPem, 'admin', token);
    const kubeconfigPath = join(dir, 'kubeconfig');
    writeFileSync(kubeconfigPath, kubeconfig, { mode: 0o600 });

    let dead: (why: string) => void = () => {};
    const died = new Promise<string>((resolve) => {
      dead = resolve;
    });
    const launch = (name: string, args: string[]) => {
      const c = startComponent(binDir, name, args, dir, options.log);
      components.push(c);
      c.exited.then((code) => {
        if (!closed) dead(`${name} exited with ${code} while starting; its log ends:\n${tail(dir, name)}`);
      });
      return c;
    };

    launch('etcd', [
      '--name=default',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
      // A throwaway test store: durability buys nothing and fsync costs most of a write.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    await waitFor(
      'etcd',
      30_000,
      async () => (await fetch(`http://127.0.0.1:${etcdClient}/health`)).ok,
      died,
    );

    launch('kube-apiserver', [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${dir}`,
      `--tls-cert-file=${certs.serving}`,
      `--tls-private-key-file=${certs.servingKey}`,
      `--client-ca-file=${certs.ca}`,
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      '--allow-privileged=true',
      '--profiling=false',
      '--v=0',
    ]);
    const ready = async (path: string) => (await api('GET', path)).status === 200;
    await waitFor('kube-apiserver', 90_000, () => ready('/readyz'), died);

    writeFileSync(
      join(dir, 'kwok.yaml'),
      stagesConfig({ images: options.images ?? [], timeScale, kubeletVersion: pinnedVersion() }),
    );
    launch('kube-controller-manager', [
      `--kubeconfig=${kubeconfigPath}`,
      '--leader-elect=false',
      '--secure-port=0',
      `--service-account-private-key-file=${join(dir, 'sa.key')}`,
      `--root-ca-file=${certs.ca}`,
      `--cluster-signing-cert-file=${certs.ca}`,
      `--cluster-signing-key-file=${certs.caKey}`,
      '--use-service-account-credentials=false',
      // Fake nodes have no cloud and no volumes to attach.
      '--controllers=*,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller,-persistentvolume-binder,-attachdetach,-persistentvolume-expander,-ephemeral-volume',
      '--concurrent-deployment-syncs=10',
      '--concurrent-replicaset-syncs=10',
      '--v=0',
    ]);
    launch('kube-scheduler', [
      `--kubeconfig=${kubeconfigPath}`,
      '--leader-elect=false',
      '--secure-port=0',
      '--v=0',
    ]);
    launch('kwok', [
      `--kubeconfig=${kubeconfigPath}`,
      `--config=${join(dir, 'kwok.yaml')}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      '--node-lease-duration-seconds=40',
      '--cidr=10.0.0.1/16',
      '--node-ip=10.1.0.1',
    ]);

    webhook = await startUnschedulableWebhook(options.images ?? [], certs);
    if (webhook) {
      const port = (webhook.address() as AddressInfo).port;
      const created = await api(
        'POST',
        '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
        {
          apiVersion: 'admissionregistration.k8s.io/v1',
          kind: 'MutatingWebhookConfiguration',
          metadata: { name: 'pipeline-test-unschedulable-images' },
          webhooks: [
            {
              name: 'unschedulable-images.pipeline.dev',
              clientConfig: {
                url: `https://127.0.0.1:${port}/mutate`,
                caBundle: Buffer.from(caPem).toString('base64'),
              },
              rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
              admissionReviewVersions: ['v1'],
              sideEffects: 'None',
              failurePolicy: 'Fail',
              timeoutSeconds: 5,
            },
          ],
        },
      );
      if (created.status >= 300)
        throw new Error(
          `could not register the unschedulable-image webhook: ${JSON.stringify(created.body)}`,
        );
    }

    for (let i = 0; i < (options.nodes ?? 3); i++) {
      const made = await api('POST', '/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: `kwok-node-${i}`,
          annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
          labels: {
            'kubernetes.io/hostname': `kwok-node-${i}`,
            'kubernetes.io/os': 'linux',
            'kubernetes.io/arch': 'amd64',
            type: 'kwok',
          },
        },
        spec: {},
      });
      if (made.status >= 300)
        throw new Error(`could not create node kwok-node-${i}: ${JSON.stringify(made.body)}`);
    }
    const nodesReady = async () => {
      const { body: json } = await api('GET', '/api/v1/nodes');
      const items =
        (json as { items?: { status?: { conditions?: { type: string; status: string }[] } }[] }).items ?? [];
      return (
        items.length > 0 &&
        items.every((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
      );
    };
    await waitFor('the KWOK nodes', 60_000, nodesReady, died);
    // Pods can be created in a namespace once its default ServiceAccount exists.
    await waitFor(
      'the default ServiceAccount',
      60_000,
      () => ready('/api/v1/namespaces/default/serviceaccounts/default'),
      died,
    );
    for (const ns of options.namespaces ?? []) {
      await api('POST', '/api/v1/namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: ns },
      });
      await waitFor(
        `namespace ${ns}`,
        60_000,
        () => ready(`/api/v1/namespaces/${ns}/serviceaccounts/default`),
        died,
      );
    }
    dead = () => {};
    return { httpsUrl, caCert: caPem, token, kubeconfigPath, kubeconfig, dir, timeScale, close };
  } catch (err) {
    await close();
    throw err;
  }
}
