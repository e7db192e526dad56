import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { closeServer, FailurePlan, listenLoopback, type PlannedFailure, readBody, sendJson } from './http.ts';

/**
 * A local endpoint that answers like the GitHub REST API for the parts the suite uses
 * (deployments and their statuses), recording every request for tests and the rehearsal.
 */

export interface GitHubRequest {
  method: string;
  path: string;
  body: unknown;
  authorization: string | undefined;
}

export interface DeploymentStatusRecord {
  id: number;
  state: string;
  description: string;
  environment: string;
  environment_url: string;
  log_url: string;
  created_at: string;
}

export interface DeploymentRecord {
  id: number;
  owner: string;
  repo: string;
  ref: string;
  sha: string;
  task: string;
  environment: string;
  description: string;
  payload: unknown;
  production_environment: boolean;
  transient_environment: boolean;
  created_at: string;
  statuses: DeploymentStatusRecord[];
}

const DEPLOYMENT_STATES = new Set([
  'error',
  'failure',
  'inactive',
  'in_progress',
  'queued',
  'pending',
  'success',
]);

export interface LocalGitHubOptions {
  tokens?: string[];
  onRequest?: (request: GitHubRequest) => void;
}

export class LocalGitHub {
  readonly url: string;
  readonly requests: GitHubRequest[] = [];
  readonly deployments: DeploymentRecord[] = [];
  private readonly server: Server;
  private readonly tokens: Set<string>;
  private readonly failures = new FailurePlan();
  private readonly onRequest: LocalGitHubOptions['onRequest'];
  private nextId = 1000;

  private constructor(server: Server, url: string, options: LocalGitHubOptions) {
    this.server = server;
    this.url = url;
    this.tokens = new Set(options.tokens ?? ['ghs_harnessTokenValue0123456789']);
    this.onRequest = options.onRequest;
  }

  static async start(options: LocalGitHubOptions = {}): Promise<LocalGitHub> {
    let instance: LocalGitHub | undefined;
    const { server, url } = await listenLoopback((req, res) => {
      instance!.handle(req, res).catch((error) => sendJson(res, 500, { message: String(error) }));
    });
    instance = new LocalGitHub(server, url, options);
    return instance;
  }

  /** Fail the next request(s) whose `METHOD /path` matches the key, e.g. `POST /repos/acme/shop/deployments/1000/statuses`. */
  failNext(key: string, failure: PlannedFailure): void {
    this.failures.add(key, failure);
  }

  /** Creates a deployment directly, as an earlier step would have. */
  seedDeployment(
    fields: Partial<DeploymentRecord> & { owner: string; repo: string; environment: string },
  ): DeploymentRecord {
    const record: DeploymentRecord = {
      id: this.nextId++,
      ref: 'main',
      sha: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
      task: 'deploy',
      description: '',
      payload: {},
      production_environment: fields.environment === 'production',
      transient_environment: false,
      created_at: new Date().toISOString(),
      statuses: [],
      ...fields,
    };
    this.deployments.push(record);
    return record;
  }

  async close(): Promise<void> {
    await closeServer(this.server);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const method = req.method ?? 'GET';
    const raw = await readBody(req);
    let body: unknown;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      return sendJson(res, 400, { message: 'Problems parsing JSON' });
    }
    const request: GitHubRequest = {
      method,
      path: url.pathname,
      body,
      authorization: req.headers.authorization,
    };
    this.requests.push(request);
    this.onRequest?.(request);

    const failure = this.failures.take(`${method} ${url.pathname}`);
    if (failure) {
      const headers: Record<string, string> =
        failure.retryAfter !== undefined ? { 'retry-after': String(failure.retryAfter) } : {};
      return sendJson(res, failure.status ?? 500, { message: failure.error ?? 'Server Error' }, headers);
    }
    const token = (req.headers.authorization ?? '').replace(/^(token|bearer) /i, '');
    if (!this.tokens.has(token)) {
      return sendJson(res, 401, {
        message: 'Bad credentials',
        documentation_url: 'https://docs.github.com/rest',
      });
    }

    let m = /^\/repos\/([^/]+)\/([^/]+)\/deployments$/.exec(url.pathname);
    if (m && method === 'POST')
      return this.createDeployment(m[1]!, m[2]!, body as Record<string, unknown>, res);
    if (m && method === 'GET') {
      const env = url.searchParams.get('environment');
      const list = this.deployments
        .filter((d) => d.owner === m![1] && d.repo === m![2] && (!env || d.environment === env))
        .sort((a, b) => b.id - a.id)
        .map((d) => this.present(d));
      return sendJson(res, 200, list);
    }
    m = /^\/repos\/([^/]+)\/([^/]+)\/deployments\/(\d+)$/.exec(url.pathname);
    if (m && method === 'GET') {
      const d = this.find(m[1]!, m[2]!, Number(m[3]));
      return d ? sendJson(res, 200, this.present(d)) : sendJson(res, 404, { message: 'Not Found' });
    }
    m = /^\/repos\/([^/]+)\/([^/]+)\/deployments\/(\d+)\/statuses$/.exec(url.pathname);
    if (m) {
      const d = this.find(m[1]!, m[2]!, Number(m[3]));
      if (!d) return sendJson(res, 404, { message: 'Not Found' });
      if (method === 'GET') return sendJson(res, 200, [...d.statuses].reverse());
      if (method === 'POST') return this.createStatus(d, body as Record<string, unknown>, res);
    }
    sendJson(res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
  }

  private find(owner: string, repo: string, id: number): DeploymentRecord | undefined {
    return this.deployments.find((d) => d.owner === owner && d.repo === repo && d.id === id);
  }

  private present(d: DeploymentRecord) {
    const { statuses: _statuses, owner, repo, ...rest } = d;
    return {
      ...rest,
      url: `${this.url}/repos/${owner}/${repo}/deployments/${d.id}`,
      statuses_url: `${this.url}/repos/${owner}/${repo}/deployments/${d.id}/statuses`,
    };
  }

  private createDeployment(
    owner: string,
    repo: string,
    body: Record<string, unknown> | undefined,
    res: ServerResponse,
  ): void {
    if (!body || typeof body.ref !== 'string' || !body.ref) {
      return sendJson(res, 422, {
        message: 'Invalid request.\n\n"ref" wasn\'t supplied.',
        errors: [{ resource: 'Deployment', field: 'ref', code: 'missing_field' }],
      });
    }
    const environment = typeof body.environment === 'string' ? body.environment : 'production';
    const record = this.seedDeployment({
      owner,
      repo,
      environment,
      ref: body.ref,
      sha: /^[0-9a-f]{40}$/.test(body.ref) ? body.ref : 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
      task: typeof body.task === 'string' ? body.task : 'deploy',
      description: typeof body.description === 'string' ? body.description : '',
      payload: typeof body.payload === 'string' ? JSON.parse(body.payload) : (body.payload ?? {}),
      production_environment:
        typeof body.production_environment === 'boolean'
          ? body.production_environment
          : environment === 'production',
      transient_environment: body.transient_environment === true,
    });
    sendJson(res, 201, this.present(record));
  }

  private createStatus(
    d: DeploymentRecord,
    body: Record<string, unknown> | undefined,
    res: ServerResponse,
  ): void {
    const state = body?.state;
    if (typeof state !== 'string' || !DEPLOYMENT_STATES.has(state)) {
      return sendJson(res, 422, {
        message: 'Validation Failed',
        errors: [{ resource: 'DeploymentStatus', field: 'state', code: 'invalid' }],
      });
    }
    const description = typeof body?.description === 'string' ? body.description : '';
    if (description.length > 140) {
      return sendJson(res, 422, {
        message: 'Validation Failed',
        errors: [
          {
            resource: 'DeploymentStatus',
            field: 'description',
            code: 'custom',
            message: 'description is too long (maximum is 140 characters)',
          },
        ],
      });
    }
    const status: DeploymentStatusRecord = {
      id: this.nextId++,
      state,
      description,
      environment: typeof body?.environment === 'string' ? body.environment : d.environment,
      environment_url: typeof body?.environment_url === 'string' ? body.environment_url : '',
      log_url: typeof body?.log_url === 'string' ? body.log_url : '',
      created_at: new Date().toISOString(),
    };
    d.statuses.push(status);
    sendJson(res, 201, {
      ...status,
      url: `${this.url}/repos/${d.owner}/${d.repo}/deployments/${d.id}/statuses/${status.id}`,
      deployment_url: `${this.url}/repos/${d.owner}/${d.repo}/deployments/${d.id}`,
    });
  }
}
