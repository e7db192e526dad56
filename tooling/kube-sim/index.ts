/**
 * kube-sim: an embedded Kubernetes API server for tests, benchmarks and the local rehearsal.
 * It speaks the real wire protocol on a loopback port, so `kubectl` and @kubernetes/client-node
 * talk to it as to a cluster; controllers play Deployments, ReplicaSets, Jobs, Services and pods
 * by an image behaviour table, with time optionally running faster than real time.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Clock, systemClock } from '../../packages/core/index.ts';
import { type ApiContext, handleResource, queryBool, sendError, sendJson, type WatchHandle } from './api.ts';
import { BehaviourTable } from './behaviour.ts';
import { Controllers } from './controllers/index.ts';
import {
  apiGroup,
  apiGroupList,
  apiResourceList,
  apiVersions,
  openApiV3Doc,
  openApiV3Root,
  SERVER_VERSION,
} from './discovery.ts';
import { Faults } from './faults.ts';
import { ProxyMetrics, seededRandom } from './metrics.ts';
import { decodeProtobufObject } from './protobuf.ts';
import { type ProxyContext, proxyToPod, proxyToService } from './proxy.ts';
import {
  ADMIN,
  type Attributes,
  authorize,
  bootstrapPolicy,
  forbiddenError,
  type Identity,
  identityOfUser,
  selfSubjectAccessReview,
  selfSubjectRulesReview,
  TokenIssuer,
  tokenRequest,
} from './rbac.ts';
import { findResource, type ResourceInfo, resourceByKind } from './resources.ts';
import { TrafficRouter } from './routing.ts';
import { SimTime } from './runtime.ts';
import { ApiError, badRequest, methodNotAllowed, notFoundPath, unauthorized } from './status.ts';
import { Store } from './store.ts';
import { SIM_CERT, SIM_KEY } from './tls.ts';
import type { FaultPlan, ImageBehaviour, KubeObject, SimUser } from './types.ts';

export { ApiError } from './status.ts';
export type {
  FaultMatch,
  FaultPlan,
  HttpBehaviour,
  ImageBehaviour,
  KubeObject,
  PodMode,
  SimUser,
} from './types.ts';

export interface KubeSimOptions {
  /** Bearer token of the admin user (default random). */
  token?: string;
  /** Users limited to some namespaces: 403 elsewhere. */
  users?: SimUser[];
  images?: ImageBehaviour[];
  /** Simulated delays (pull, start, readiness, back-off, progress deadline) run this many times faster. */
  timeScale?: number;
  faults?: FaultPlan;
  /** Default 0: a free loopback port. */
  port?: number;
  /** Namespaces to create besides default, kube-system, kube-public and kube-node-lease. */
  namespaces?: string[];
  /** How many changes watches can resume across (default 10000); older resourceVersions get 410 Gone. */
  watchHistory?: number;
  /** Real milliseconds between watch bookmarks (default 60 s of simulated time, at least 100 ms). */
  bookmarkIntervalMs?: number;
  /**
   * Real milliseconds from a change to the reconciles it triggers (default 10), so a read right
   * after a write sees the controllers' status lag behind as on a real cluster.
   */
  controllerLatencyMs?: number;
  /** Seed for error rates, fault rates and random balancing. */
  seed?: number;
  /** Service proxy balancing (default round-robin, which follows the number of ready pods exactly). */
  balancing?: 'round-robin' | 'random';
  clock?: Clock;
}

export interface KubeSim {
  /** http://127.0.0.1:PORT — for fetch, curl and the proxy; the same port also speaks TLS. */
  readonly url: string;
  /** https://127.0.0.1:PORT — what the kubeconfig names, since kubectl sends tokens only over TLS. */
  readonly httpsUrl: string;
  /** PEM of the certificate the TLS side presents (also in the kubeconfig as certificate-authority-data). */
  readonly caCert: string;
  readonly port: number;
  readonly token: string;
  readonly kubeconfigPath: string;
  readonly kubeconfig: string;
  readonly timeScale: number;
  setImageBehaviour(pattern: string | RegExp, behaviour: Omit<ImageBehaviour, 'pattern'>): void;
  setFaults(plan: FaultPlan): void;
  /** Real milliseconds from a change to the reconciles it triggers (see `controllerLatencyMs`). */
  setControllerLatency(ms: number): void;
  /** Cuts every open watch connection now. */
  dropWatches(): void;
  readonly openWatches: number;
  /** Watches opened so far; a client that resumes after a drop opens another. */
  readonly watchesStarted: number;
  /** Forgets watch history so that any earlier resourceVersion answers 410 Gone. */
  compactHistory(): void;
  /** Prometheus text of the service proxy counters (the gateway and ingress routes count there too). */
  metricsText(): string;
  /**
   * Base URL (kube-sim extension, same bearer token as the API) whose requests follow the weights
   * of the HTTPRoute's first rule's backendRefs: `${sim.gatewayUrl('ns', 'shop')}/path`.
   */
  gatewayUrl(namespace: string, route: string): string;
  /**
   * Base URL (kube-sim extension, same bearer token as the API) whose requests go to the Ingress's
   * backend, or by `canary-weight` to the backend of an ingress-nginx canary Ingress of the same host.
   */
  ingressUrl(namespace: string, ingress: string): string;
  /** A kubeconfig for another token (one of `users`), written next to the admin one. */
  writeKubeconfig(token: string, namespace?: string): string;
  /** Errors controllers raised while reconciling (should stay empty). */
  readonly controllerErrors: readonly { key: string; error: unknown }[];
  /** The current stored object, for tests that look behind the API. */
  peek(kind: string, namespace: string | undefined, name: string): KubeObject | undefined;
  close(): Promise<void>;
}

function kubeconfigText(url: string, token: string, user: string, namespace: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: kube-sim',
    '  cluster:',
    `    server: ${url}`,
    `    certificate-authority-data: ${Buffer.from(SIM_CERT).toString('base64')}`,
    'users:',
    `- name: ${user}`,
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: kube-sim',
    '  context:',
    '    cluster: kube-sim',
    `    user: ${user}`,
    `    namespace: ${namespace}`,
    'current-context: kube-sim',
    'preferences: {}',
    '',
  ].join('\n');
}

/** The API server's default --max-request-body-bytes (3 MiB). */
const MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024;

function parseJsonBody(req: IncomingMessage, raw: Buffer): Record<string, unknown> {
  if (String(req.headers['content-type'] ?? '').startsWith('application/vnd.kubernetes.protobuf')) {
    return decodeProtobufObject(raw);
  }
  const body = raw.toString('utf8');
  try {
    const parsed: unknown = JSON.parse(body || '{}');
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
  } catch {
    // answered below, as the real server answers a body it cannot decode
  }
  throw badRequest(
    'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml',
  );
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

interface Route {
  resource: ResourceInfo;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
  tail: string;
  watchPrefix: boolean;
}

function route(path: string): Route | 'discovery' | undefined {
  const segs = path
    .split('/')
    .filter((s) => s.length > 0)
    .map(decodeURIComponent);
  let group: string;
  let version: string | undefined;
  let rest: string[];
  if (segs[0] === 'api') {
    group = '';
    version = segs[1];
    rest = segs.slice(2);
  } else if (segs[0] === 'apis') {
    group = segs[1] ?? '';
    version = segs[2];
    rest = segs.slice(3);
  } else return undefined;
  if (!version || rest.length === 0) return 'discovery';
  let watchPrefix = false;
  if (rest[0] === 'watch') {
    watchPrefix = true;
    rest = rest.slice(1);
  }
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    const r = findResource(group, version, rest[2]!);
    if (r?.namespaced) {
      return {
        resource: r,
        namespace: rest[1],
        name: rest[3],
        subresource: rest[4],
        tail: rest.slice(5).join('/'),
        watchPrefix,
      };
    }
  }
  const r = findResource(group, version, rest[0]!);
  if (!r) return undefined;
  return {
    resource: r,
    namespace: undefined,
    name: rest[1],
    subresource: rest[2],
    tail: rest.slice(3).join('/'),
    watchPrefix,
  };
}

function verbOf(method: string, route: Route, query: URLSearchParams): string {
  if (route.subresource === 'proxy') return 'proxy';
  const isWatch = route.watchPrefix || queryBool(query, 'watch');
  switch (method) {
    case 'GET':
      if (isWatch) return 'watch';
      return route.name ? 'get' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return route.name ? 'delete' : 'deletecollection';
    default:
      return method.toLowerCase();
  }
}

/** The attributes RBAC judges a resource request by; proxy verbs follow the HTTP method as on the real server. */
function attributesOf(method: string, verb: string, route: Route, path: string): Attributes {
  const proxyVerb: Record<string, string> = {
    GET: 'get',
    HEAD: 'get',
    POST: 'create',
    PUT: 'update',
    PATCH: 'patch',
    DELETE: 'delete',
  };
  return {
    verb: verb === 'proxy' ? (proxyVerb[method] ?? method.toLowerCase()) : verb,
    resourceRequest: true,
    apiGroup: route.resource.group,
    resource: route.resource.plural,
    subresource: route.subresource ?? '',
    name: route.name ?? '',
    namespace: route.resource.namespaced ? (route.namespace ?? '') : '',
    path,
  };
}

export async function startKubeSim(options: KubeSimOptions = {}): Promise<KubeSim> {
  const token = options.token ?? randomBytes(24).toString('hex');
  const timeScale = options.timeScale && options.timeScale > 0 ? options.timeScale : 1;
  const clock = options.clock ?? systemClock;
  const random = options.seed !== undefined ? seededRandom(options.seed) : Math.random;
  const time = new SimTime(clock, timeScale);
  const store = new Store({ historySize: options.watchHistory ?? 10_000, now: () => clock.now() });
  const table = new BehaviourTable(options.images ?? []);
  const controllers = new Controllers(store, time, table, options.controllerLatencyMs ?? 10);
  const faults = new Faults(random, options.faults);
  const metrics = new ProxyMetrics();
  const watches = new Set<WatchHandle>();
  const users = new Map((options.users ?? []).map((u) => [u.token, u]));
  const NAMESPACES = resourceByKind('Namespace');
  const issuer = new TokenIssuer();
  bootstrapPolicy(store);

  const ctx: ApiContext = {
    store,
    controllers,
    now: () => clock.now(),
    bookmarkIntervalMs: options.bookmarkIntervalMs ?? Math.max(100, 60_000 / timeScale),
    watches,
    watchesStarted: 0,
    dropWatchesAfterMs: () => faults.dropWatchesAfterMs,
  };
  const proxyCtx: ProxyContext = {
    store,
    kubelet: controllers.kubelet,
    metrics,
    time,
    random,
    balancing: options.balancing ?? 'round-robin',
  };
  const router = new TrafficRouter(proxyCtx);

  for (const ns of [
    'default',
    'kube-system',
    'kube-public',
    'kube-node-lease',
    ...(options.namespaces ?? []),
  ]) {
    if (store.get(NAMESPACES, undefined, ns)) continue;
    store.create(NAMESPACES, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: ns, labels: { 'kubernetes.io/metadata.name': ns } },
      spec: { finalizers: ['kubernetes'] },
      status: { phase: 'Active' },
    });
    store.create(resourceByKind('ServiceAccount'), {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'default', namespace: ns },
    });
  }

  let host = '127.0.0.1';

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (method === 'GET' && path === '/version') return sendJson(res, 200, SERVER_VERSION);
    if (method === 'GET' && ['/healthz', '/readyz', '/livez'].includes(path)) {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
      return;
    }
    if (method === 'GET' && path === '/metrics') {
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' });
      res.end(metrics.text());
      return;
    }
    const auth = req.headers.authorization ?? '';
    const presented = /^Bearer\s+(.+)$/i.exec(auth)?.[1]?.trim();
    let caller: Identity;
    if (presented === token) caller = ADMIN;
    else {
      const u = presented ? users.get(presented) : undefined;
      const sa = u || !presented ? undefined : issuer.verify(store, presented, clock.now());
      if (u) caller = identityOfUser(u);
      else if (sa) caller = sa;
      else throw unauthorized();
    }
    const check = (a: Attributes) => {
      const d = authorize(store, caller, a);
      if (!d.allowed) throw forbiddenError(caller, a, d.reason);
    };
    const data = /^\/kube-sim\/(gateway|ingress)\/([^/]+)\/([^/]+)(?:\/(.*))?$/.exec(path);
    if (data) {
      // The data plane behind HTTPRoutes and Ingresses, authorized like the service proxy.
      const [, kind, namespace, name, tail] = data.map((s) => (s === undefined ? s : decodeURIComponent(s)));
      const resource = resourceByKind(kind === 'gateway' ? 'HTTPRoute' : 'Ingress');
      check({
        verb: 'get',
        resourceRequest: true,
        apiGroup: resource.group,
        resource: resource.plural,
        subresource: '',
        name: name!,
        namespace: namespace!,
        path,
      });
      await readBody(req);
      const subpath = `${tail ?? ''}${url.search}`;
      if (kind === 'gateway') return router.gateway(req, res, namespace!, name!, subpath);
      return router.ingress(req, res, namespace!, name!, subpath);
    }
    const r = route(path);
    const raw = await readBody(req);
    if (raw.length > MAX_REQUEST_BODY_BYTES) {
      throw new ApiError(
        413,
        'RequestEntityTooLarge',
        `Request entity too large: limit is ${MAX_REQUEST_BODY_BYTES}`,
      );
    }
    const body = raw.toString('utf8');
    const isDiscovery = r === 'discovery' || r === undefined;
    const info = isDiscovery
      ? { verb: method.toLowerCase(), resource: '', path, discovery: true }
      : {
          verb: verbOf(method, r, url.searchParams),
          resource: r.resource.plural + (r.subresource ? `/${r.subresource}` : ''),
          path,
          discovery: false,
        };
    const fault = faults.check(info);
    if (fault.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, fault.latencyMs));
    if (fault.error) throw fault.error;

    if (isDiscovery) {
      check({
        verb: method.toLowerCase(),
        resourceRequest: false,
        apiGroup: '',
        resource: '',
        subresource: '',
        name: '',
        namespace: '',
        path,
      });
    }
    if (path === '/api' || path === '/api/') return sendJson(res, 200, apiVersions(host));
    if (path === '/apis' || path === '/apis/') return sendJson(res, 200, apiGroupList());
    if (path === '/openapi/v3' || path === '/openapi/v3/') return sendJson(res, 200, openApiV3Root());
    const oa = /^\/openapi\/v3\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))$/.exec(path);
    if (oa) {
      const doc = oa[1] ? openApiV3Doc('', oa[1]) : openApiV3Doc(oa[2]!, oa[3]!);
      if (doc) return sendJson(res, 200, doc);
      throw notFoundPath();
    }
    if (r === 'discovery') {
      const segs = path.split('/').filter(Boolean);
      if (segs[0] === 'api' && segs.length === 2) {
        const doc = apiResourceList('', segs[1]!);
        if (doc) return sendJson(res, 200, doc);
      }
      if (segs[0] === 'apis' && segs.length === 2) {
        const doc = apiGroup(segs[1]!);
        if (doc) return sendJson(res, 200, doc);
      }
      if (segs[0] === 'apis' && segs.length === 3) {
        const doc = apiResourceList(segs[1]!, segs[2]!);
        if (doc) return sendJson(res, 200, doc);
      }
      throw notFoundPath();
    }
    if (r === undefined) throw notFoundPath();
    const verb = info.verb;
    check(attributesOf(method, verb, r, path));
    if (r.resource.kind === 'ServiceAccount' && r.subresource === 'token') {
      if (method !== 'POST') throw methodNotAllowed();
      const sa = store.mustGet(r.resource, r.namespace, r.name!);
      return sendJson(res, 201, tokenRequest(issuer, sa, parseJsonBody(req, raw), clock.now()));
    }
    if (r.resource.kind === 'SelfSubjectRulesReview') {
      if (verb !== 'create' || r.name) throw methodNotAllowed();
      return sendJson(res, 201, selfSubjectRulesReview(store, caller, parseJsonBody(req, raw)));
    }
    if (r.resource.kind === 'SelfSubjectAccessReview' || r.resource.kind === 'SelfSubjectReview') {
      if (verb !== 'create' || r.name) throw methodNotAllowed();
      if (r.resource.kind === 'SelfSubjectReview') {
        return sendJson(res, 201, {
          kind: 'SelfSubjectReview',
          apiVersion: 'authentication.k8s.io/v1',
          metadata: { creationTimestamp: null },
          status: { userInfo: { username: caller.name, groups: caller.groups } },
        });
      }
      return sendJson(res, 201, selfSubjectAccessReview(store, caller, parseJsonBody(req, raw)));
    }
    if (verb === 'proxy') {
      if (!r.namespace || !r.name) throw notFoundPath();
      if (r.resource.kind === 'Service')
        return proxyToService(proxyCtx, req, res, r.namespace, r.name, `${r.tail}${url.search}`);
      if (r.resource.kind === 'Pod')
        return proxyToPod(proxyCtx, req, res, r.namespace, r.name, `${r.tail}${url.search}`);
      throw notFoundPath();
    }
    if (r.subresource && !r.resource.subresources.includes(r.subresource)) throw notFoundPath();
    if (r.resource.namespaced && r.namespace === undefined && r.name !== undefined) throw notFoundPath();
    if (r.resource.namespaced && r.namespace === undefined && !['list', 'watch', 'create'].includes(verb)) {
      throw notFoundPath();
    }
    handleResource(ctx, {
      resource: r.resource,
      namespace: r.namespace,
      name: r.name,
      subresource: r.subresource,
      verb,
      query: url.searchParams,
      req,
      res,
      body,
      raw,
      userAgent: String(req.headers['user-agent'] ?? ''),
    });
  }

  const trace = process.env['KUBE_SIM_TRACE'] === '1';
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (trace) {
      res.on('finish', () => {
        console.error(
          `kube-sim ${req.method} ${req.url} ${res.statusCode} [${req.headers['content-type'] ?? ''}] accept=${req.headers.accept ?? ''}`,
        );
      });
    }
    handle(req, res).catch((error: unknown) => {
      const apiError =
        error instanceof ApiError
          ? error
          : new ApiError(
              500,
              'InternalError',
              `Internal error occurred: ${error instanceof Error ? error.message : String(error)}`,
            );
      if (res.headersSent) {
        res.end();
        return;
      }
      sendError(res, apiError);
    });
  };
  const httpServer = createServer(onRequest);
  const httpsServer = createHttpsServer({ cert: SIM_CERT, key: SIM_KEY }, onRequest);
  for (const s of [httpServer, httpsServer]) {
    s.requestTimeout = 0;
    s.keepAliveTimeout = 30_000;
  }
  // One port, both protocols: a TLS ClientHello starts with 0x16, anything else is plain HTTP.
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      (first[0] === 0x16 ? httpsServer : httpServer).emit('connection', socket);
      process.nextTick(() => socket.resume());
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  host = `127.0.0.1:${port}`;
  const url = `http://127.0.0.1:${port}`;
  const httpsUrl = `https://127.0.0.1:${port}`;
  const dir = mkdtempSync(join(tmpdir(), 'kube-sim-'));
  const kubeconfig = kubeconfigText(httpsUrl, token, 'kube-sim-admin', 'default');
  const kubeconfigPath = join(dir, 'kubeconfig');
  writeFileSync(kubeconfigPath, kubeconfig, { mode: 0o600 });
  let closed = false;

  return {
    url,
    httpsUrl,
    caCert: SIM_CERT,
    port,
    token,
    kubeconfigPath,
    kubeconfig,
    timeScale,
    setImageBehaviour(pattern, behaviour) {
      table.set(pattern, { ...behaviour, pattern });
    },
    setFaults(plan) {
      faults.set(plan);
    },
    setControllerLatency(ms) {
      controllers.queue.latencyMs = Math.max(0, ms);
    },
    dropWatches() {
      for (const w of [...watches]) w.close(true);
    },
    get openWatches() {
      return watches.size;
    },
    get watchesStarted() {
      return ctx.watchesStarted;
    },
    compactHistory() {
      store.compact();
    },
    metricsText: () => metrics.text(),
    gatewayUrl: (namespace, route) =>
      `${url}/kube-sim/gateway/${encodeURIComponent(namespace)}/${encodeURIComponent(route)}`,
    ingressUrl: (namespace, ingress) =>
      `${url}/kube-sim/ingress/${encodeURIComponent(namespace)}/${encodeURIComponent(ingress)}`,
    writeKubeconfig(userToken, namespace = 'default') {
      const user = userToken === token ? 'kube-sim-admin' : (users.get(userToken)?.name ?? 'kube-sim-user');
      const file = join(dir, `kubeconfig-${user.replace(/[^a-zA-Z0-9_-]/g, '_')}-${namespace}`);
      writeFileSync(file, kubeconfigText(httpsUrl, userToken, user, namespace), { mode: 0o600 });
      return file;
    },
    get controllerErrors() {
      return controllers.errors;
    },
    peek(kind, namespace, name) {
      return store.get(resourceByKind(kind), namespace, name);
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const w of [...watches]) w.close(true);
      controllers.close();
      time.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        httpServer.closeAllConnections();
        httpsServer.closeAllConnections();
        for (const s of sockets) s.destroy();
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
