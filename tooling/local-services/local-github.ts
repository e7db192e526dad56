import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { closeServer, FailurePlan, listenLoopback, type PlannedFailure, readBody, sendJson } from './http.ts';

/**
 * A local endpoint that answers like the GitHub REST API for the parts the suite uses
 * (deployments and their statuses; environments with their protection rules, deployment branch
 * policies and variables; user and team lookups), recording every request for tests and the
 * rehearsal.
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

export interface UserRecord {
  login: string;
  id: number;
}

export interface TeamRecord {
  org: string;
  slug: string;
  name: string;
  id: number;
  /** Logins of active members, for `GET /orgs/{org}/teams/{team_slug}/memberships/{username}`. */
  members?: string[];
}

export interface BranchPolicyRecord {
  id: number;
  name: string;
  type: 'branch' | 'tag';
}

export interface VariableRecord {
  name: string;
  value: string;
  created_at: string;
  updated_at: string;
}

export interface EnvironmentRecord {
  id: number;
  owner: string;
  repo: string;
  name: string;
  wait_timer: number;
  prevent_self_review: boolean;
  can_admins_bypass: boolean;
  reviewers: Array<{ type: 'User' | 'Team'; id: number }>;
  deployment_branch_policy: { protected_branches: boolean; custom_branch_policies: boolean } | null;
  branch_policies: BranchPolicyRecord[];
  variables: VariableRecord[];
  created_at: string;
  updated_at: string;
}

/** One commit of a repository's linear history, for `GET /repos/{owner}/{repo}/compare/{basehead}`. */
export interface CommitRecord {
  sha: string;
  message: string;
  author: { name: string; email: string; date: string };
  /** The GitHub account the author's email belongs to; null when it belongs to none. */
  login: string | null;
}

export interface LocalGitHubOptions {
  tokens?: string[];
  onRequest?: (request: GitHubRequest) => void;
}

export class LocalGitHub {
  readonly url: string;
  readonly requests: GitHubRequest[] = [];
  readonly deployments: DeploymentRecord[] = [];
  readonly environments: EnvironmentRecord[] = [];
  /** Repository variables (`GET /repos/{owner}/{repo}/actions/variables/{name}`), by `owner/repo` then name; tests set and delete them. */
  readonly repositoryVariables = new Map<string, Map<string, string>>();
  readonly users: UserRecord[] = [];
  readonly teams: TeamRecord[] = [];
  /** Each repository's history (`owner/repo`), oldest first; a test or the rehearsal seeds it. */
  readonly commits = new Map<string, CommitRecord[]>();
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

  /** Appends commits (oldest first) to a repository's linear history. */
  seedCommits(owner: string, repo: string, commits: CommitRecord[]): void {
    const key = `${owner}/${repo}`;
    this.commits.set(key, [...(this.commits.get(key) ?? []), ...commits]);
  }

  /** A GitHub user that `GET /users/{username}` finds. */
  seedUser(login: string): UserRecord {
    const user = { login, id: this.nextId++ };
    this.users.push(user);
    return user;
  }

  /** A team that `GET /orgs/{org}/teams/{team_slug}` finds. */
  seedTeam(org: string, slug: string, name = slug, members: string[] = []): TeamRecord {
    const team = { org, slug, name, id: this.nextId++, members };
    this.teams.push(team);
    return team;
  }

  /** An environment created directly, as someone clicking in the settings would have. */
  seedEnvironment(
    fields: Partial<EnvironmentRecord> & { owner: string; repo: string; name: string },
  ): EnvironmentRecord {
    const now = new Date().toISOString();
    const record: EnvironmentRecord = {
      id: this.nextId++,
      wait_timer: 0,
      prevent_self_review: false,
      can_admins_bypass: true,
      reviewers: [],
      deployment_branch_policy: null,
      branch_policies: [],
      variables: [],
      created_at: now,
      updated_at: now,
      ...fields,
    };
    this.environments.push(record);
    return record;
  }

  environment(owner: string, repo: string, name: string): EnvironmentRecord | undefined {
    return this.environments.find((e) => e.owner === owner && e.repo === repo && e.name === name);
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

    if (/^\/(users|orgs)\//.test(url.pathname) || /^\/repos\/[^/]+\/[^/]+\/environments/.test(url.pathname)) {
      return this.handleEnvironments(method, url, body, res);
    }

    const variable = /^\/repos\/([^/]+)\/([^/]+)\/actions\/variables\/([^/]+)$/.exec(url.pathname);
    if (variable && method === 'GET') {
      const name = decodeURIComponent(variable[3]!).toUpperCase();
      const value = this.repositoryVariables.get(`${variable[1]}/${variable[2]}`)?.get(name);
      return value === undefined
        ? sendJson(res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' })
        : sendJson(res, 200, {
            name,
            value,
            created_at: new Date(0).toISOString(),
            updated_at: new Date().toISOString(),
          });
    }

    const compare = /^\/repos\/([^/]+)\/([^/]+)\/compare\/(.+)$/.exec(url.pathname);
    if (compare && method === 'GET')
      return this.compare(compare[1]!, compare[2]!, decodeURIComponent(compare[3]!), res);

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

  /**
   * GitHub's comparison of two commits of a linear history, in its documented shape: status
   * (ahead, behind, identical), ahead_by/behind_by, total_commits and up to 250 commits oldest
   * first; 404 when either end is not in the history.
   */
  private compare(owner: string, repo: string, basehead: string, res: ServerResponse): void {
    const [base, head, extra] = basehead.split('...');
    const history = this.commits.get(`${owner}/${repo}`) ?? [];
    const at = (ref: string | undefined) =>
      ref && ref.length >= 7 ? history.findIndex((c) => c.sha.startsWith(ref)) : -1;
    const b = at(base);
    const h = at(head);
    if (extra !== undefined || b < 0 || h < 0)
      return sendJson(res, 404, {
        message: 'Not Found',
        documentation_url: 'https://docs.github.com/rest/commits/commits#compare-two-commits',
      });
    const present = (c: CommitRecord, i: number) => ({
      sha: c.sha,
      node_id: `C_${c.sha.slice(0, 12)}`,
      url: `${this.url}/repos/${owner}/${repo}/commits/${c.sha}`,
      html_url: `https://github.com/${owner}/${repo}/commit/${c.sha}`,
      commit: {
        author: c.author,
        committer: c.author,
        message: c.message,
        tree: { sha: c.sha, url: `${this.url}/repos/${owner}/${repo}/git/trees/${c.sha}` },
        comment_count: 0,
      },
      author: c.login ? { login: c.login, id: 1, type: 'User' } : null,
      committer: c.login ? { login: c.login, id: 1, type: 'User' } : null,
      parents: i > 0 ? [{ sha: history[i - 1]!.sha }] : [],
    });
    const ahead = Math.max(0, h - b);
    const behind = Math.max(0, b - h);
    const commits = history.slice(b + 1, h + 1).map((c, i) => present(c, b + 1 + i));
    const mergeBase = Math.min(b, h);
    sendJson(res, 200, {
      url: `${this.url}/repos/${owner}/${repo}/compare/${basehead}`,
      html_url: `https://github.com/${owner}/${repo}/compare/${basehead}`,
      permalink_url: `https://github.com/${owner}/${repo}/compare/${owner}:${history[b]!.sha.slice(0, 7)}...${owner}:${history[h]!.sha.slice(0, 7)}`,
      diff_url: `https://github.com/${owner}/${repo}/compare/${basehead}.diff`,
      patch_url: `https://github.com/${owner}/${repo}/compare/${basehead}.patch`,
      base_commit: present(history[b]!, b),
      merge_base_commit: present(history[mergeBase]!, mergeBase),
      status: ahead > 0 ? 'ahead' : behind > 0 ? 'behind' : 'identical',
      ahead_by: ahead,
      behind_by: behind,
      total_commits: ahead,
      commits: commits.slice(0, 250),
      files: [],
    });
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

  // --- environments -----------------------------------------------------------------------------

  private handleEnvironments(method: string, url: URL, body: unknown, res: ServerResponse): void {
    const parts = url.pathname.split('/').slice(1).map(decodeURIComponent);
    const input = (body ?? {}) as Record<string, unknown>;
    const notFound = () => sendJson(res, 404, { message: 'Not Found', documentation_url: DOCS });

    if (parts[0] === 'users' && parts.length === 2 && method === 'GET') {
      const user = this.users.find((u) => u.login.toLowerCase() === parts[1]!.toLowerCase());
      return user ? sendJson(res, 200, this.presentUser(user)) : notFound();
    }
    if (
      parts[0] === 'orgs' &&
      parts[2] === 'teams' &&
      parts[4] === 'memberships' &&
      parts.length === 6 &&
      method === 'GET'
    ) {
      const team = this.teams.find(
        (t) => t.org.toLowerCase() === parts[1]!.toLowerCase() && t.slug === parts[3]!.toLowerCase(),
      );
      const login = parts[5]!.toLowerCase();
      return team?.members?.some((m) => m.toLowerCase() === login)
        ? sendJson(res, 200, {
            url: `${this.url}/orgs/${team.org}/teams/${team.slug}/memberships/${login}`,
            role: 'member',
            state: 'active',
          })
        : notFound();
    }
    if (parts[0] === 'orgs' && parts[2] === 'teams' && parts.length === 4 && method === 'GET') {
      const team = this.teams.find(
        (t) => t.org.toLowerCase() === parts[1]!.toLowerCase() && t.slug === parts[3]!.toLowerCase(),
      );
      return team ? sendJson(res, 200, this.presentTeam(team)) : notFound();
    }
    const [, owner, repo, , name, sub, subId] = parts as [string, string, string, string, ...string[]];
    if (parts[0] !== 'repos' || parts[3] !== 'environments') return notFound();

    if (parts.length === 4) {
      if (method !== 'GET') return notFound();
      const list = this.environments
        .filter((e) => e.owner === owner && e.repo === repo)
        .sort((a, b) => a.name.localeCompare(b.name));
      const page = paginate(list, url, 30, 100);
      return sendJson(res, 200, {
        total_count: list.length,
        environments: page.map((e) => this.presentEnvironment(e)),
      });
    }
    if (!name) return notFound();
    let env = this.environment(owner, repo, name);

    if (parts.length === 5) {
      if (method === 'GET') return env ? sendJson(res, 200, this.presentEnvironment(env)) : notFound();
      if (method === 'DELETE') {
        if (!env) return notFound();
        this.environments.splice(this.environments.indexOf(env), 1);
        return sendEmpty(res);
      }
      if (method !== 'PUT') return notFound();
      const problem = this.environmentProblem(input);
      if (problem) {
        return sendJson(res, 422, { message: `Validation Failed: ${problem}`, documentation_url: DOCS });
      }
      env ??= this.seedEnvironment({ owner, repo, name });
      if (input.wait_timer !== undefined) env.wait_timer = input.wait_timer as number;
      if (input.prevent_self_review !== undefined)
        env.prevent_self_review = input.prevent_self_review as boolean;
      if (input.can_admins_bypass !== undefined) env.can_admins_bypass = input.can_admins_bypass as boolean;
      if (input.reviewers !== undefined) {
        env.reviewers = ((input.reviewers ?? []) as Array<{ type: 'User' | 'Team'; id: number }>).map(
          (r) => ({
            type: r.type,
            id: r.id,
          }),
        );
      }
      if (input.deployment_branch_policy !== undefined) {
        const policy = input.deployment_branch_policy as EnvironmentRecord['deployment_branch_policy'];
        env.deployment_branch_policy = policy ? { ...policy } : null;
        // Leaving custom policies drops their rules, as GitHub does.
        if (!policy?.custom_branch_policies) env.branch_policies = [];
      }
      env.updated_at = new Date().toISOString();
      return sendJson(res, 200, this.presentEnvironment(env));
    }
    if (!env) return notFound();

    if (sub === 'deployment-branch-policies') {
      const custom = env.deployment_branch_policy?.custom_branch_policies === true;
      if (parts.length === 6) {
        if (method === 'GET') {
          const page = paginate(env.branch_policies, url, 30, 100);
          return sendJson(res, 200, {
            total_count: env.branch_policies.length,
            branch_policies: page.map((p) => this.presentPolicy(p)),
          });
        }
        if (method !== 'POST') return notFound();
        if (!custom) return notFound();
        const policyName = input.name;
        const type = input.type ?? 'branch';
        if (typeof policyName !== 'string' || !policyName || (type !== 'branch' && type !== 'tag')) {
          return sendJson(res, 422, { message: 'Validation Failed', documentation_url: DOCS });
        }
        if (env.branch_policies.some((p) => p.name === policyName && p.type === type)) {
          return sendJson(res, 303, { message: 'A policy with this name pattern already exists' });
        }
        const policy: BranchPolicyRecord = { id: this.nextId++, name: policyName, type };
        env.branch_policies.push(policy);
        return sendJson(res, 200, this.presentPolicy(policy));
      }
      const policy = env.branch_policies.find((p) => p.id === Number(subId));
      if (parts.length !== 7 || !policy) return notFound();
      if (method === 'GET') return sendJson(res, 200, this.presentPolicy(policy));
      if (method === 'PUT' && typeof input.name === 'string') {
        policy.name = input.name;
        return sendJson(res, 200, this.presentPolicy(policy));
      }
      if (method === 'DELETE') {
        env.branch_policies.splice(env.branch_policies.indexOf(policy), 1);
        return sendEmpty(res);
      }
      return notFound();
    }

    if (sub === 'variables') {
      if (parts.length === 6) {
        if (method === 'GET') {
          const sorted = [...env.variables].sort((a, b) => a.name.localeCompare(b.name));
          return sendJson(res, 200, { total_count: sorted.length, variables: paginate(sorted, url, 10, 30) });
        }
        if (method !== 'POST') return notFound();
        const problem = variableProblem(input.name, input.value);
        if (problem)
          return sendJson(res, 422, { message: `Validation Failed: ${problem}`, documentation_url: DOCS });
        const varName = (input.name as string).toUpperCase();
        if (env.variables.some((v) => v.name === varName)) {
          return sendJson(res, 409, {
            message: 'Already exists - Variable already exists',
            documentation_url: DOCS,
          });
        }
        const now = new Date().toISOString();
        env.variables.push({ name: varName, value: input.value as string, created_at: now, updated_at: now });
        return sendJson(res, 201, {});
      }
      const variable = env.variables.find((v) => v.name === subId?.toUpperCase());
      if (parts.length !== 7 || !variable) return notFound();
      if (method === 'GET') return sendJson(res, 200, variable);
      if (method === 'PATCH') {
        const problem = variableProblem(input.name ?? variable.name, input.value ?? variable.value);
        if (problem)
          return sendJson(res, 422, { message: `Validation Failed: ${problem}`, documentation_url: DOCS });
        if (typeof input.name === 'string') variable.name = input.name.toUpperCase();
        if (typeof input.value === 'string') variable.value = input.value;
        variable.updated_at = new Date().toISOString();
        return sendEmpty(res);
      }
      if (method === 'DELETE') {
        env.variables.splice(env.variables.indexOf(variable), 1);
        return sendEmpty(res);
      }
    }
    return notFound();
  }

  /** GitHub's validation of `PUT /repos/{owner}/{repo}/environments/{environment_name}`. */
  private environmentProblem(input: Record<string, unknown>): string | undefined {
    const wait = input.wait_timer;
    if (
      wait !== undefined &&
      (!Number.isInteger(wait) || (wait as number) < 0 || (wait as number) > 43_200)
    ) {
      return 'wait_timer must be an integer from 0 to 43200';
    }
    for (const key of ['prevent_self_review', 'can_admins_bypass']) {
      if (input[key] !== undefined && typeof input[key] !== 'boolean') return `${key} must be a boolean`;
    }
    const reviewers = input.reviewers;
    if (reviewers !== undefined && reviewers !== null) {
      if (!Array.isArray(reviewers)) return 'reviewers must be an array';
      if (reviewers.length > 6) return 'reviewers can have at most 6 entries';
      for (const r of reviewers as Array<{ type?: unknown; id?: unknown }>) {
        const known =
          r.type === 'User'
            ? this.users.some((u) => u.id === r.id)
            : r.type === 'Team'
              ? this.teams.some((t) => t.id === r.id)
              : false;
        if (!known) return `reviewer ${JSON.stringify(r)} is not a known user or team`;
      }
    }
    const policy = input.deployment_branch_policy;
    if (policy !== undefined && policy !== null) {
      const p = policy as Record<string, unknown>;
      if (typeof p.protected_branches !== 'boolean' || typeof p.custom_branch_policies !== 'boolean') {
        return 'deployment_branch_policy needs protected_branches and custom_branch_policies';
      }
      if (p.protected_branches === p.custom_branch_policies) {
        return 'exactly one of protected_branches and custom_branch_policies must be true';
      }
    }
    return undefined;
  }

  private presentUser(user: UserRecord) {
    return {
      login: user.login,
      id: user.id,
      node_id: `U_${user.id}`,
      avatar_url: `https://avatars.githubusercontent.com/u/${user.id}`,
      url: `${this.url}/users/${user.login}`,
      html_url: `https://github.com/${user.login}`,
      type: 'User',
      site_admin: false,
    };
  }

  private presentTeam(team: TeamRecord) {
    return {
      id: team.id,
      node_id: `T_${team.id}`,
      url: `${this.url}/orgs/${team.org}/teams/${team.slug}`,
      html_url: `https://github.com/orgs/${team.org}/teams/${team.slug}`,
      name: team.name,
      slug: team.slug,
      description: null,
      privacy: 'closed',
      permission: 'pull',
      parent: null,
    };
  }

  private presentPolicy(p: BranchPolicyRecord) {
    return { id: p.id, node_id: `DBP_${p.id}`, name: p.name, type: p.type };
  }

  private presentEnvironment(env: EnvironmentRecord) {
    const rules: unknown[] = [];
    if (env.wait_timer > 0) {
      rules.push({
        id: env.id * 10 + 1,
        node_id: `GA_${env.id}_1`,
        type: 'wait_timer',
        wait_timer: env.wait_timer,
      });
    }
    if (env.reviewers.length > 0) {
      rules.push({
        id: env.id * 10 + 2,
        node_id: `GA_${env.id}_2`,
        type: 'required_reviewers',
        prevent_self_review: env.prevent_self_review,
        reviewers: env.reviewers.map((r) => {
          const user = r.type === 'User' ? this.users.find((u) => u.id === r.id) : undefined;
          const team = r.type === 'Team' ? this.teams.find((t) => t.id === r.id) : undefined;
          return {
            type: r.type,
            reviewer: user ? this.presentUser(user) : team ? this.presentTeam(team) : { id: r.id },
          };
        }),
      });
    }
    if (env.deployment_branch_policy) {
      rules.push({ id: env.id * 10 + 3, node_id: `GA_${env.id}_3`, type: 'branch_policy' });
    }
    return {
      id: env.id,
      node_id: `EN_${env.id}`,
      name: env.name,
      url: `${this.url}/repos/${env.owner}/${env.repo}/environments/${encodeURIComponent(env.name)}`,
      html_url: `https://github.com/${env.owner}/${env.repo}/deployments/activity_log?environments_filter=${encodeURIComponent(env.name)}`,
      created_at: env.created_at,
      updated_at: env.updated_at,
      can_admins_bypass: env.can_admins_bypass,
      protection_rules: rules,
      deployment_branch_policy: env.deployment_branch_policy,
    };
  }
}

const DOCS = 'https://docs.github.com/rest';

function sendEmpty(res: ServerResponse): void {
  res.writeHead(204);
  res.end();
}

/** GitHub's `per_page` / `page` query parameters. */
function paginate<T>(list: T[], url: URL, perPageDefault: number, perPageMax: number): T[] {
  const per = Math.min(Number(url.searchParams.get('per_page')) || perPageDefault, perPageMax);
  const page = Math.max(Number(url.searchParams.get('page')) || 1, 1);
  return list.slice((page - 1) * per, page * per);
}

function variableProblem(name: unknown, value: unknown): string | undefined {
  if (typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    return 'name must be alphanumeric or _ and not start with a number';
  }
  if (/^GITHUB_/i.test(name)) return 'name must not start with GITHUB_';
  if (typeof value !== 'string') return 'value must be a string';
  return undefined;
}
