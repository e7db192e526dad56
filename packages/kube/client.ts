import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { createSecureContext } from 'node:tls';
// The config module alone: the package index would also load every generated API client.
import { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { parse as parseYaml } from 'yaml';
import {
  type Clock,
  errorMessage,
  headerSecrets,
  InputError,
  isTransientNetworkError,
  type Logger,
  PipelineError,
  parseRetryAfter,
  type RetryDecision,
  retry,
  silentLogger,
  systemClock,
} from '../core/index.ts';
import { kubeconfigUserSecrets, looksLikeKubeconfigContent, serverSecrets } from './kubeconfig-secrets.ts';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A Kubernetes `Status` answer, kept whole so callers can react to its reason and causes. */
export class KubeApiError extends PipelineError {
  readonly status: number;
  readonly reason: string;
  readonly causes: { field?: string; message?: string; reason?: string }[];
  readonly retryAfterMs: number | undefined;
  /** The server's own message, without the method, path and status this error's message leads with. */
  readonly apiMessage: string;
  constructor(method: string, path: string, status: number, body: string, retryAfterMs?: number) {
    let reason = '';
    let message = body.slice(0, 300);
    let causes: KubeApiError['causes'] = [];
    try {
      const s = JSON.parse(body) as {
        reason?: string;
        message?: string;
        details?: { causes?: KubeApiError['causes'] };
      };
      reason = s.reason ?? '';
      message = s.message ?? message;
      causes = s.details?.causes ?? [];
    } catch {
      // not a Status object; keep the text
    }
    super(`${method} ${path}: HTTP ${status}${reason ? ` ${reason}` : ''}: ${message}`);
    this.status = status;
    this.reason = reason;
    this.causes = causes;
    this.retryAfterMs = retryAfterMs;
    this.apiMessage = message;
  }
}

export interface KubeClientOptions {
  /** A kubeconfig file path, or the kubeconfig itself (YAML), as a workflow secret usually holds it. */
  kubeconfig?: string;
  context?: string;
  logger?: Logger;
  clock?: Clock;
  attempts?: number;
  /** Per-request timeout for non-watch requests (default 30 s). */
  timeoutMs?: number;
  /** The input the kubeconfig came from, for error messages. */
  inputName?: string;
}

export interface RequestOptions {
  body?: unknown;
  contentType?: string;
  accept?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Retry even a non-idempotent request on 5xx (the caller knows a repeat is harmless). */
  idempotent?: boolean;
  /** Extra request headers (service-proxy probes); the kubeconfig's credentials still win. */
  headers?: Record<string, string>;
  /** Attempts for this request instead of the client's default. */
  attempts?: number;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/** Loads the kubeconfig the way kubectl does, with errors that say which input or file was wrong. */
export function loadKubeConfig(options: KubeClientOptions): KubeConfig {
  const input = options.inputName ?? 'kubeconfig';
  const kc = new KubeConfig();
  const given = options.kubeconfig?.trim();
  const sources: { text: string; dir: string }[] = [];
  const readSource = (file: string) => {
    try {
      sources.push({ text: readFileSync(file, 'utf8'), dir: dirname(file) });
    } catch {
      // kc.load* below reports a file it cannot read.
    }
  };
  try {
    if (given && looksLikeKubeconfigContent(given)) {
      kc.loadFromString(given);
      sources.push({ text: given, dir: process.cwd() });
    } else if (given) {
      if (!existsSync(given))
        throw new InputError(
          input,
          `names the file ${JSON.stringify(given)}, which does not exist`,
          'a kubeconfig file path, or the kubeconfig YAML itself',
        );
      kc.loadFromFile(given);
      readSource(given);
    } else {
      const fromEnv = (process.env.KUBECONFIG ?? '').split(delimiter).filter(Boolean);
      const home = join(homedir(), '.kube', 'config');
      if (fromEnv.length === 0 && !existsSync(home)) {
        throw new InputError(
          input,
          'was not given, KUBECONFIG is not set and ~/.kube/config does not exist',
          'a kubeconfig file path or its YAML (for example from a secret)',
        );
      }
      const missing = fromEnv.filter((f) => !existsSync(f));
      if (fromEnv.length > 0 && missing.length === fromEnv.length) {
        throw new InputError(
          input,
          `was not given and KUBECONFIG names ${missing.join(', ')}, which does not exist`,
          'a kubeconfig file path or its YAML',
        );
      }
      kc.loadFromDefault();
      for (const file of fromEnv.length > 0 ? fromEnv : [home]) if (existsSync(file)) readSource(file);
    }
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError(
      input,
      `could not be read (${errorMessage(error).split('\n')[0]})`,
      'a valid kubeconfig (YAML with clusters, users and contexts)',
    );
  }
  if (options.context) {
    if (!kc.getContextObject(options.context)) {
      throw new InputError(
        'context',
        `names ${JSON.stringify(options.context)}, which the kubeconfig does not have`,
        `one of ${
          kc
            .getContexts()
            .map((c) => c.name)
            .join(', ') || '(no contexts)'
        }`,
      );
    }
    kc.setCurrentContext(options.context);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server)
    throw new InputError(
      input,
      'has no current context with a cluster server',
      'a kubeconfig whose current context (or the context input) names a cluster with a server URL',
    );
  honourTokenFiles(kc, sources, input);
  checkClientCertificate(kc, input);
  return kc;
}

/**
 * kubectl's `tokenFile` (a projected service-account token, rotated on disk), which the client
 * library does not read: the file is read again at most every minute, as client-go does. A
 * relative path is relative to the kubeconfig file.
 */
function honourTokenFiles(kc: KubeConfig, sources: { text: string; dir: string }[], input: string): void {
  const files = new Map<string, string>();
  for (const { text, dir } of sources) {
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch {
      continue;
    }
    const users = (doc as { users?: unknown } | null)?.users;
    for (const entry of Array.isArray(users) ? users : []) {
      const { name, user } = (entry ?? {}) as { name?: unknown; user?: { tokenFile?: unknown } };
      if (typeof name === 'string' && typeof user?.tokenFile === 'string' && !files.has(name))
        files.set(name, isAbsolute(user.tokenFile) ? user.tokenFile : join(dir, user.tokenFile));
    }
  }
  const current = kc.getCurrentUser();
  if (!current || current.token || !files.has(current.name)) return;
  const path = files.get(current.name)!;
  const read = () => {
    try {
      return readFileSync(path, 'utf8').trim();
    } catch (error) {
      throw new InputError(
        input,
        `names the tokenFile ${JSON.stringify(path)} for user ${current.name}, which cannot be read (${(error as { code?: string }).code ?? errorMessage(error)})`,
        'a kubeconfig whose tokenFile is a readable file holding a bearer token',
      );
    }
  };
  let token = read();
  let readAt = Date.now();
  kc.addAuthenticator({
    isAuthProvider: (user) => user.name === current.name && !user.token && !user.exec && !user.authProvider,
    applyAuthentication: async (_user, opts) => {
      if (Date.now() - readAt > 60_000) {
        token = read();
        readAt = Date.now();
      }
      opts.headers = { ...opts.headers, Authorization: `Bearer ${token}` };
    },
  });
}

/** A client certificate or key that TLS cannot use fails here, not as an asn1 error mid-request. */
function checkClientCertificate(kc: KubeConfig, input: string): void {
  const user = kc.getCurrentUser();
  if (!user || (!user.certData && !user.keyData && !user.certFile && !user.keyFile)) return;
  try {
    const cert = user.certData
      ? Buffer.from(user.certData, 'base64')
      : user.certFile
        ? readFileSync(user.certFile)
        : undefined;
    const key = user.keyData
      ? Buffer.from(user.keyData, 'base64')
      : user.keyFile
        ? readFileSync(user.keyFile)
        : undefined;
    createSecureContext({ ...(cert ? { cert } : {}), ...(key ? { key } : {}) });
  } catch (error) {
    throw new InputError(
      input,
      `has a client certificate or key for user ${user.name} that cannot be used (${errorMessage(error).split('\n')[0]})`,
      'a kubeconfig whose client-certificate-data and client-key-data are a matching base64 PEM certificate and key',
    );
  }
}

/** Secrets a kubeconfig may hold, to mask before anything can log them. */
export function kubeconfigSecrets(kc: KubeConfig): string[] {
  const out: string[] = [];
  for (const user of kc.getUsers()) out.push(...kubeconfigUserSecrets(user));
  for (const cluster of kc.getClusters()) out.push(...serverSecrets(cluster.server));
  return [...new Set(out)];
}

/**
 * A small client for the Kubernetes REST API, on top of @kubernetes/client-node's KubeConfig
 * (so every auth method kubectl supports works). It retries throttling (429 with Retry-After) and
 * server errors with backoff, never a request that may have changed something unless told so.
 */
export class KubeClient {
  readonly kc: KubeConfig;
  readonly server: string;
  readonly defaultNamespace: string;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly attempts: number;
  private readonly timeoutMs: number;
  private agent: http.Agent | undefined;
  private maskedAuthorization: string | undefined;
  private readonly inputName: string;

  constructor(kc: KubeConfig, options: KubeClientOptions = {}) {
    this.kc = kc;
    this.server = kc.getCurrentCluster()!.server.replace(/\/+$/, '');
    const ctx = kc.getContextObject(kc.getCurrentContext());
    this.defaultNamespace = ctx?.namespace || 'default';
    this.log = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.attempts = options.attempts ?? 6;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.inputName = options.inputName ?? 'kubeconfig';
  }

  /** One keep-alive agent for the client's life, with the TLS settings the kubeconfig asks for. */
  /**
   * Applies the kubeconfig's credentials to a request. An exec plugin that failed, an auth
   * provider that cannot refresh: the kubeconfig's user cannot authenticate, whatever the request.
   * Its message may quote the plugin's stderr, whose secrets are masked (kubeconfigSecrets); its
   * stack is of no use to the reader.
   */
  private async authenticate(requestOptions: https.RequestOptions): Promise<void> {
    try {
      await this.kc.applyToHTTPSOptions(requestOptions);
    } catch (error) {
      const user = this.kc.getCurrentUser();
      const how = user?.exec
        ? `its exec plugin ${JSON.stringify(user.exec.command ?? '')} failed`
        : user?.authProvider
          ? `its auth-provider ${JSON.stringify(user.authProvider.name ?? '')} failed`
          : 'its credentials could not be applied';
      throw new InputError(
        this.inputName,
        `has a user (${user?.name ?? 'none'}) that cannot authenticate: ${how} (${errorMessage(error).trim().split('\n')[0]})`,
        'a kubeconfig whose user can get credentials here (a token, a client certificate, or an exec plugin installed on the runner)',
      );
    }
    // A token an exec plugin or auth provider returned, or a tokenFile held: as secret as the kubeconfig.
    const authorization = (requestOptions.headers as Record<string, unknown> | undefined)?.Authorization;
    if (typeof authorization === 'string' && authorization !== this.maskedAuthorization) {
      this.maskedAuthorization = authorization;
      for (const secret of headerSecrets(authorization)) this.log.mask(secret);
    }
  }

  private agentFor(applied: https.RequestOptions): http.Agent {
    this.agent ??= this.server.startsWith('https:')
      ? new https.Agent({ ...pickTls(applied), keepAlive: true })
      : new http.Agent({ keepAlive: true });
    return this.agent;
  }

  static load(options: KubeClientOptions = {}): KubeClient {
    return new KubeClient(loadKubeConfig(options), options);
  }

  close(): void {
    this.agent?.destroy();
  }

  /** One HTTP exchange with the API server; no retry, no status check. */
  async once(method: string, path: string, options: RequestOptions = {}): Promise<RawResponse> {
    const url = new URL(this.server + path);
    const body =
      options.body === undefined
        ? undefined
        : typeof options.body === 'string'
          ? options.body
          : JSON.stringify(options.body);
    const requestOptions: https.RequestOptions = {
      method,
      headers: {
        ...options.headers,
        accept: options.headers?.accept ?? options.accept ?? 'application/json',
        'user-agent': 'pipeline/1 (+github actions)',
        ...(body !== undefined
          ? {
              'content-type': options.contentType ?? options.headers?.['content-type'] ?? 'application/json',
              'content-length': String(Buffer.byteLength(body)),
            }
          : {}),
      },
    };
    await this.authenticate(requestOptions);
    requestOptions.agent = this.agentFor(requestOptions);
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise<RawResponse>((resolve, reject) => {
      const req = transport.request(url, requestOptions, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: flattenHeaders(res.headers),
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      });
      req.setTimeout(timeoutMs, () =>
        req.destroy(
          Object.assign(new Error(`no answer from the API server in ${timeoutMs} ms`), { code: 'ETIMEDOUT' }),
        ),
      );
      req.on('error', reject);
      options.signal?.addEventListener('abort', () => req.destroy(options.signal!.reason as Error), {
        once: true,
      });
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  /** A request with the retry policy; non-2xx answers become KubeApiError. */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<RawResponse> {
    const idempotent = options.idempotent ?? IDEMPOTENT.has(method);
    const classify = (error: unknown): RetryDecision => {
      if (error instanceof KubeApiError) {
        if (error.status === 429)
          return {
            retry: true,
            reason: 'the API server is throttling (429)',
            afterMs: error.retryAfterMs ?? 1000,
          };
        if (idempotent && [500, 502, 503, 504].includes(error.status))
          return { retry: true, reason: `HTTP ${error.status}` };
        return { retry: false };
      }
      const code = (error as { code?: string }).code;
      // A refused connection never reached the server, so any request may be repeated.
      if (code === 'ECONNREFUSED' || (idempotent && isTransientNetworkError(error)))
        return { retry: true, reason: errorMessage(error) };
      return { retry: false };
    };
    return retry(
      async () => {
        const response = await this.once(method, path, options);
        if (response.status >= 200 && response.status < 300) return response;
        throw new KubeApiError(
          method,
          path,
          response.status,
          response.body,
          parseRetryAfter(response.headers['retry-after']),
        );
      },
      {
        attempts: options.attempts ?? this.attempts,
        clock: this.clock,
        classify,
        baseDelayMs: 250,
        maxDelayMs: 8000,
        ...(options.signal ? { signal: options.signal } : {}),
        onRetry: ({ attempt, delayMs, reason }) =>
          this.log.warning(
            `${method} ${path}: ${reason}; retry ${attempt} of ${this.attempts - 1} in ${delayMs} ms`,
          ),
      },
    ).catch((error: unknown) => {
      // Keep the API's own error (with its status and causes) rather than the retry wrapper.
      const cause = (error as { cause?: unknown }).cause;
      if ((error as Error).name === 'RetriesExhaustedError' && cause instanceof KubeApiError) {
        throw new KubeApiError(
          method,
          path,
          cause.status,
          JSON.stringify({
            reason: cause.reason,
            // The server's message alone: the new error leads with the method, path and status again.
            message: `${cause.apiMessage} (gave up after ${this.attempts} attempts)`,
          }),
        );
      }
      throw error;
    });
  }

  async json<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.request(method, path, options);
    return (response.body ? JSON.parse(response.body) : undefined) as T;
  }

  /** GET that answers undefined for 404, for "does it exist" questions. */
  async getJson<T = unknown>(path: string, options: RequestOptions = {}): Promise<T | undefined> {
    try {
      return await this.json<T>('GET', path, options);
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return undefined;
      throw error;
    }
  }

  /**
   * Streams watch events for a collection from `resourceVersion`, resuming after dropped
   * connections from the last version seen. Returns when `onEvent` returns true, the signal
   * aborts, or the server says the version is too old (410), which the caller handles by
   * listing again.
   */
  async watch(
    collectionPath: string,
    options: {
      resourceVersion: string;
      labelSelector?: string;
      fieldSelector?: string;
      signal: AbortSignal;
      onEvent: (type: string, object: Record<string, unknown>) => boolean | undefined;
    },
  ): Promise<'done' | 'gone' | 'aborted'> {
    let resourceVersion = options.resourceVersion;
    let failures = 0;
    let quickEnds = 0;
    let sawEvent = false;
    let streamStarted = 0;
    while (!options.signal.aborted) {
      const query = new URLSearchParams({
        watch: '1',
        allowWatchBookmarks: 'true',
        resourceVersion,
        timeoutSeconds: '300',
      });
      if (options.labelSelector) query.set('labelSelector', options.labelSelector);
      if (options.fieldSelector) query.set('fieldSelector', options.fieldSelector);
      try {
        streamStarted = performance.now();
        sawEvent = false;
        const outcome = await this.streamOnce(
          `${collectionPath}?${query}`,
          options.signal,
          (type, object) => {
            const rv = (object.metadata as { resourceVersion?: string } | undefined)?.resourceVersion;
            if (type === 'ERROR') return (object as { code?: number }).code === 410 ? 'gone' : 'error';
            if (rv) resourceVersion = rv;
            failures = 0;
            if (type === 'BOOKMARK') return undefined;
            return options.onEvent(type, object) ? 'done' : undefined;
          },
        );
        if (outcome === 'done' || outcome === 'gone') return outcome;
        // A stream that ends at once with nothing in it (a proxy closing early) must not spin.
        if (performance.now() - streamStarted < 1000 && failures === 0 && !sawEvent) {
          quickEnds++;
          await this.clock.sleep(Math.min(8000, 100 * 2 ** quickEnds), options.signal).catch(() => {});
        } else {
          quickEnds = 0;
        }
      } catch (error) {
        if (options.signal.aborted) return 'aborted';
        if (error instanceof KubeApiError && error.status === 410) return 'gone';
        if (error instanceof KubeApiError && ![429, 500, 502, 503, 504].includes(error.status)) throw error;
        failures++;
        if (failures > this.attempts) throw error;
        const delay = Math.min(8000, 250 * 2 ** failures);
        this.log.debug(
          `watch ${collectionPath} dropped (${errorMessage(error)}); resuming from ${resourceVersion} in ${delay} ms`,
        );
        await this.clock.sleep(delay, options.signal).catch(() => {});
      }
    }
    return 'aborted';
  }

  private async streamOnce(
    path: string,
    signal: AbortSignal,
    onEvent: (type: string, object: Record<string, unknown>) => 'done' | 'gone' | 'error' | undefined,
  ): Promise<'done' | 'gone' | 'ended'> {
    const url = new URL(this.server + path);
    const requestOptions: https.RequestOptions = { method: 'GET', headers: { accept: 'application/json' } };
    await this.authenticate(requestOptions);
    requestOptions.agent =
      url.protocol === 'https:' ? new https.Agent(pickTls(requestOptions)) : new http.Agent();
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = transport.request(url, requestOptions, (res) => {
        if ((res.statusCode ?? 0) >= 300) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            reject(
              new KubeApiError(
                'GET',
                path,
                res.statusCode ?? 0,
                Buffer.concat(chunks).toString('utf8'),
                parseRetryAfter(res.headers['retry-after'] as string | undefined),
              ),
            ),
          );
          return;
        }
        let buffer = '';
        let settled = false;
        const finish = (value: 'done' | 'gone' | 'ended') => {
          if (settled) return;
          settled = true;
          req.destroy();
          resolve(value);
        };
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let nl = buffer.indexOf('\n');
          while (nl >= 0 && !settled) {
            const line = buffer.slice(0, nl).trim();
            buffer = buffer.slice(nl + 1);
            nl = buffer.indexOf('\n');
            if (!line) continue;
            const event = JSON.parse(line) as { type: string; object: Record<string, unknown> };
            const verdict = onEvent(event.type, event.object);
            if (verdict === 'done' || verdict === 'gone') finish(verdict);
            else if (verdict === 'error') {
              settled = true;
              req.destroy();
              reject(
                new KubeApiError(
                  'GET',
                  path,
                  Number((event.object as { code?: number }).code ?? 500),
                  JSON.stringify(event.object),
                ),
              );
            }
          }
        });
        res.on('end', () => finish('ended'));
        res.on('error', (error) => {
          if (!settled) {
            settled = true;
            reject(error);
          }
        });
        res.on('close', () => {
          if (!settled) {
            settled = true;
            reject(Object.assign(new Error('watch connection closed'), { code: 'ECONNRESET' }));
          }
        });
      });
      req.on('error', reject);
      signal.addEventListener('abort', () => req.destroy(), { once: true });
      req.end();
    });
  }
}

function pickTls(o: https.RequestOptions): https.AgentOptions {
  const { ca, cert, key, rejectUnauthorized, servername, pfx, passphrase } = o;
  return Object.fromEntries(
    Object.entries({ ca, cert, key, rejectUnauthorized, servername, pfx, passphrase }).filter(
      ([, v]) => v !== undefined,
    ),
  );
}

function flattenHeaders(headers: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers))
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}
