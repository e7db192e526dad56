import { parse as parseYaml } from 'yaml';
import { DAY_MS, type Logger, PipelineError, parseDuration, silentLogger } from '../core/index.ts';
import { parseSchedule, ScheduleError } from '../core/schedule.ts';
import { GitHubApiError, type Octokit, withGitHubRetry } from './client.ts';

/**
 * GitHub environments as code: a declarative file (required reviewers, wait timer, deployment
 * branch policies, variables) is compared with what the repository has, the differences are shown
 * as a plan, and only an explicit apply makes them.
 */

const WAIT_TIMER_MAX_MINUTES = 43_200;
const MAX_REVIEWERS = 6;

export interface ReviewerRef {
  type: 'User' | 'Team';
  /** A login for users; `org/slug` for teams. */
  name: string;
  /** Where it was written, for error messages: `environments.production.reviewers.users[0]`. */
  path: string;
}

export interface PolicyPattern {
  name: string;
  type: 'branch' | 'tag';
}

export type BranchPolicySpec =
  | { kind: 'all' }
  | { kind: 'protected' }
  | { kind: 'custom'; patterns: PolicyPattern[] };

export interface EnvironmentSpec {
  name: string;
  waitTimerMinutes: number;
  preventSelfReview: boolean;
  canAdminsBypass: boolean;
  reviewers: ReviewerRef[];
  branchPolicy: BranchPolicySpec;
  /** Names upper-cased as GitHub stores them; undefined: this file does not manage the variables. */
  variables: Map<string, string> | undefined;
}

export interface EnvironmentsConfig {
  environments: EnvironmentSpec[];
}

export interface ConfigProblem {
  path: string;
  problem: string;
}

/** Every problem of the file at once, each naming the environment and the field. */
class EnvironmentsConfigError extends PipelineError {
  readonly problems: ConfigProblem[];
  constructor(
    source: string,
    problems: ConfigProblem[],
    headline = `${source} is not a valid environments file`,
  ) {
    const lines = problems.map((p) => `  - ${p.path}: ${p.problem}`);
    super(
      `${headline} (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines.join('\n')}`,
    );
    this.problems = problems;
  }
}

const TOP_KEYS = ['environments'];
const ENV_KEYS = [
  'wait-timer',
  'reviewers',
  'prevent-self-review',
  'can-admins-bypass',
  'branches',
  'tags',
  'protected-branches',
  'variables',
  'windows',
];

/** The variable deploy.yml's release gate reads an environment's deploy windows from. */
export const WINDOWS_VARIABLE = 'PIPELINE_WINDOWS';
const SCHEDULE_KEYS = ['timezone', 'allow', 'deny', 'holidays'];
const REVIEWER_KEYS = ['users', 'teams'];
const LOGIN = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/;
const TEAM = /^([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))\/([A-Za-z0-9][A-Za-z0-9_.-]*)$/;
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const VARIABLE_MAX_BYTES = 48 * 1024;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function shown(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return JSON.stringify(value);
}

/**
 * Why a branch or tag name pattern (Ruby's File.fnmatch syntax, as GitHub matches them) cannot
 * match any ref git allows; undefined when it is fine.
 */
export function branchPatternProblem(pattern: string): string | undefined {
  if (pattern.length === 0) return 'is empty';
  if (pattern.length > 255) return 'is longer than 255 characters';
  if (/\p{Cc}|\s/u.test(pattern)) return 'contains white space or a control character';
  const bad = /[~^:\\]/.exec(pattern);
  if (bad) return `contains '${bad[0]}', which no git ref may contain`;
  if (pattern.includes('..')) return "contains '..', which no git ref may contain";
  if (pattern.includes('//')) return "contains '//'";
  if (pattern.startsWith('/') || pattern.endsWith('/')) return "starts or ends with '/'";
  if (pattern.endsWith('.') || pattern.endsWith('.lock')) return "ends with '.' or '.lock'";
  if (pattern.startsWith('refs/')) return "starts with 'refs/' (write the branch name alone, such as main)";
  let depth = 0;
  for (const ch of pattern) {
    if (ch === '[') depth++;
    else if (ch === ']') depth--;
    if (depth < 0 || depth > 1) return 'has unbalanced [ ] brackets';
  }
  if (depth !== 0) return 'has unbalanced [ ] brackets';
  return undefined;
}

/** Parses and validates the whole file before any request; throws EnvironmentsConfigError. */
export function parseEnvironmentsConfig(text: string, source = 'the environments file'): EnvironmentsConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true });
  } catch (error) {
    throw new EnvironmentsConfigError(source, [
      { path: '(file)', problem: `is not valid YAML: ${(error as Error).message.split('\n')[0]}` },
    ]);
  }
  const problems: ConfigProblem[] = [];
  const add = (path: string, problem: string) => problems.push({ path, problem });
  if (!isRecord(doc)) {
    throw new EnvironmentsConfigError(source, [
      { path: '(file)', problem: 'must be a mapping with an `environments:` key' },
    ]);
  }
  for (const key of Object.keys(doc)) {
    if (!TOP_KEYS.includes(key)) add(key, `unknown key; accepted: ${TOP_KEYS.join(', ')}`);
  }
  const envs = doc.environments;
  if (!isRecord(envs) || Object.keys(envs).length === 0) {
    add('environments', `must map environment names to their settings, found ${shown(envs)}`);
    throw new EnvironmentsConfigError(source, problems);
  }

  const environments: EnvironmentSpec[] = [];
  for (const [name, raw] of Object.entries(envs)) {
    const at = `environments.${name}`;
    if (name.length > 255 || /\p{Cc}/u.test(name) || name.trim() !== name || name === '') {
      add(at, 'is not a valid environment name (1 to 255 characters, no control characters or edge spaces)');
    }
    const entry: Record<string, unknown> = raw === null || raw === undefined ? {} : isRecord(raw) ? raw : {};
    if (raw !== null && raw !== undefined && !isRecord(raw)) {
      add(at, `must be a mapping of settings, found ${shown(raw)}`);
    }
    for (const key of Object.keys(entry)) {
      if (!ENV_KEYS.includes(key)) add(`${at}.${key}`, `unknown key; accepted: ${ENV_KEYS.join(', ')}`);
    }
    const spec: EnvironmentSpec = {
      name,
      waitTimerMinutes: parseWaitTimer(entry['wait-timer'], `${at}.wait-timer`, add),
      preventSelfReview: parseBoolean(entry['prevent-self-review'], false, `${at}.prevent-self-review`, add),
      canAdminsBypass: parseBoolean(entry['can-admins-bypass'], true, `${at}.can-admins-bypass`, add),
      reviewers: parseReviewers(entry.reviewers, `${at}.reviewers`, add),
      branchPolicy: parseBranchPolicy(entry, at, add),
      variables: parseVariables(entry.variables, `${at}.variables`, add),
    };
    addWindows(spec, entry.windows, at, add);
    if (spec.reviewers.length > MAX_REVIEWERS) {
      add(
        `${at}.reviewers`,
        `has ${spec.reviewers.length} reviewers; GitHub allows at most ${MAX_REVIEWERS} (users and teams together)`,
      );
    }
    if (spec.preventSelfReview && spec.reviewers.length === 0) {
      add(`${at}.prevent-self-review`, 'is true but the environment has no reviewers');
    }
    environments.push(spec);
  }
  if (problems.length > 0) throw new EnvironmentsConfigError(source, problems);
  return { environments };
}

type Add = (path: string, problem: string) => void;

function parseWaitTimer(value: unknown, path: string, add: Add): number {
  if (value === undefined || value === null) return 0;
  let minutes: number;
  if (typeof value === 'number' || (typeof value === 'string' && /^\d+$/.test(value.trim()))) {
    minutes = Number(value);
  } else if (typeof value === 'string' && /[a-z]/i.test(value)) {
    try {
      // Up to a year here, so GitHub's own 30-day limit below is what a long timer is told about.
      const ms = parseDuration(value, path, { maxMs: 365 * DAY_MS });
      if (ms % 60_000 !== 0) {
        add(path, `${JSON.stringify(value)} is not a whole number of minutes`);
        return 0;
      }
      minutes = ms / 60_000;
    } catch {
      add(
        path,
        `${JSON.stringify(value)} is not a duration; accepted: minutes (30) or a duration (30m, 2h, 1d)`,
      );
      return 0;
    }
  } else {
    add(path, `must be minutes (30) or a duration (30m, 2h), found ${shown(value)}`);
    return 0;
  }
  if (!Number.isInteger(minutes) || minutes < 0 || minutes > WAIT_TIMER_MAX_MINUTES) {
    add(
      path,
      `${minutes} minutes is out of range; accepted: a whole number from 0 to 43200 minutes (30 days)`,
    );
    return 0;
  }
  return minutes;
}

function parseBoolean(value: unknown, fallback: boolean, path: string, add: Add): boolean {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'boolean') return value;
  add(path, `must be true or false, found ${shown(value)}`);
  return fallback;
}

function parseReviewers(value: unknown, path: string, add: Add): ReviewerRef[] {
  if (value === undefined || value === null) return [];
  if (!isRecord(value)) {
    add(path, `must be a mapping with users and/or teams lists, found ${shown(value)}`);
    return [];
  }
  for (const key of Object.keys(value)) {
    if (!REVIEWER_KEYS.includes(key))
      add(`${path}.${key}`, `unknown key; accepted: ${REVIEWER_KEYS.join(', ')}`);
  }
  const out: ReviewerRef[] = [];
  const seen = new Set<string>();
  for (const [key, type, form, pattern] of [
    ['users', 'User', 'a GitHub login such as octocat', LOGIN],
    ['teams', 'Team', 'org/team-slug such as acme/sre', TEAM],
  ] as const) {
    const list = value[key];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) {
      add(`${path}.${key}`, `must be a list, found ${shown(list)}`);
      continue;
    }
    list.forEach((item, i) => {
      const at = `${path}.${key}[${i}]`;
      if (typeof item !== 'string' || !pattern.test(item)) {
        add(at, `${shown(item)} is not ${form}`);
        return;
      }
      const id = `${type}:${item.toLowerCase()}`;
      if (seen.has(id)) add(at, `${item} is listed twice`);
      seen.add(id);
      out.push({ type, name: item, path: at });
    });
  }
  return out;
}

function parseBranchPolicy(entry: Record<string, unknown>, at: string, add: Add): BranchPolicySpec {
  const protectedBranches = parseBoolean(entry['protected-branches'], false, `${at}.protected-branches`, add);
  const patterns: PolicyPattern[] = [];
  let custom = false;
  for (const [key, type] of [
    ['branches', 'branch'],
    ['tags', 'tag'],
  ] as const) {
    const list = entry[key];
    if (list === undefined || list === null) continue;
    custom = true;
    if (!Array.isArray(list) || list.length === 0) {
      add(
        `${at}.${key}`,
        `must be a non-empty list of name patterns such as main or feature/*, found ${shown(list)} (leave it out to allow every ${type})`,
      );
      continue;
    }
    const seen = new Set<string>();
    list.forEach((item, i) => {
      const path = `${at}.${key}[${i}]`;
      if (typeof item !== 'string') {
        add(path, `must be a name pattern such as main or feature/*, found ${shown(item)}`);
        return;
      }
      const problem = branchPatternProblem(item);
      if (problem) add(path, `${JSON.stringify(item)} ${problem}`);
      else if (seen.has(item)) add(path, `${JSON.stringify(item)} is listed twice`);
      seen.add(item);
      patterns.push({ name: item, type });
    });
  }
  if (custom && protectedBranches) {
    add(
      `${at}.protected-branches`,
      'cannot be combined with branches or tags: GitHub allows either protected branches or custom policies',
    );
  }
  if (custom) return { kind: 'custom', patterns };
  return protectedBranches ? { kind: 'protected' } : { kind: 'all' };
}

/**
 * An environment's deploy windows become its PIPELINE_WINDOWS variable, checked here with the
 * gate's own parser so a typo fails at `plan`, not at the next deploy.
 */
function addWindows(spec: EnvironmentSpec, value: unknown, at: string, add: Add): void {
  if (value === undefined) return;
  const path = `${at}.windows`;
  if (!isRecord(value))
    return add(path, `must be a schedule {timezone, allow, deny, holidays}, found ${shown(value)}`);
  const unknown = Object.keys(value).filter((k) => !SCHEDULE_KEYS.includes(k));
  if (unknown.length > 0)
    return add(path, `unknown key ${unknown.join(', ')}; accepted: ${SCHEDULE_KEYS.join(', ')}`);
  for (const key of ['allow', 'deny', 'holidays'])
    if (value[key] !== undefined && !Array.isArray(value[key]))
      return add(`${path}.${key}`, 'must be a list');
  try {
    parseSchedule(value as Parameters<typeof parseSchedule>[0]);
  } catch (error) {
    if (error instanceof ScheduleError) return add(path, error.message);
    throw error;
  }
  if (!spec.variables)
    return add(
      path,
      `needs variables: in the same environment (the windows are its ${WINDOWS_VARIABLE} variable, and this file manages its variables only when it lists them)`,
    );
  if (spec.variables.has(WINDOWS_VARIABLE))
    return add(path, `clashes with variables.${WINDOWS_VARIABLE}: set one of them`);
  spec.variables.set(WINDOWS_VARIABLE, JSON.stringify({ [spec.name]: value }));
}

function parseVariables(value: unknown, path: string, add: Add): Map<string, string> | undefined {
  if (value === undefined) return undefined;
  if (value === null) return new Map();
  if (!isRecord(value)) {
    add(path, `must map variable names to values, found ${shown(value)}`);
    return undefined;
  }
  const out = new Map<string, string>();
  for (const [name, raw] of Object.entries(value)) {
    const at = `${path}.${name}`;
    if (!VARIABLE_NAME.test(name)) {
      add(at, 'is not a valid variable name (letters, digits and _, not starting with a digit)');
      continue;
    }
    if (/^GITHUB_/i.test(name)) {
      add(at, 'starts with GITHUB_, which GitHub reserves');
      continue;
    }
    const upper = name.toUpperCase();
    if (out.has(upper)) add(at, `clashes with another variable: GitHub variable names ignore case`);
    if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') {
      add(at, `must be a string, number or boolean, found ${shown(raw)}`);
      continue;
    }
    const text = String(raw);
    if (Buffer.byteLength(text) > VARIABLE_MAX_BYTES) add(at, 'is longer than 48 KB');
    out.set(upper, text);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The repository's side

export interface ResolvedReviewer {
  type: 'User' | 'Team';
  id: number;
  name: string;
}

export interface ExistingPolicy extends PolicyPattern {
  id: number;
}

export interface EnvironmentState {
  exists: boolean;
  waitTimerMinutes: number;
  preventSelfReview: boolean;
  canAdminsBypass: boolean;
  reviewers: ResolvedReviewer[];
  branchPolicy: { kind: 'all' } | { kind: 'protected' } | { kind: 'custom'; patterns: ExistingPolicy[] };
  variables: Map<string, string>;
}

export type ChangeOp = 'create' | 'update' | 'delete';

export interface PlannedChange {
  op: ChangeOp;
  what:
    | 'wait timer'
    | 'prevent self-review'
    | 'admins bypass'
    | 'reviewer'
    | 'branch rule'
    | 'variable'
    | 'policy';
  name?: string;
  from?: string;
  to?: string;
}

export interface EnvironmentPlan {
  name: string;
  action: 'create' | 'update' | 'unchanged';
  changes: PlannedChange[];
  spec: EnvironmentSpec;
  reviewers: ResolvedReviewer[];
  current: EnvironmentState;
  /** The environment itself (settings, reviewers, the kind of branch policy) must be PUT. */
  settingsChange: boolean;
}

export interface EnvironmentsPlan {
  owner: string;
  repo: string;
  environments: EnvironmentPlan[];
  /** Environments the repository has that the file does not name: left as they are. */
  unmanaged: string[];
}

export interface EnvironmentsClientOptions {
  logger?: Logger;
  /** Attempts per request (rate limits and 5xx are retried). */
  attempts?: number;
}

function policyKindLabel(kind: BranchPolicySpec['kind']): string {
  return kind === 'all'
    ? 'all branches'
    : kind === 'protected'
      ? 'protected branches'
      : 'selected branches and tags';
}

function statusOf(error: unknown): number | undefined {
  const root = (error as { cause?: unknown }).cause ?? error;
  const inner = (root as { cause?: unknown }).cause ?? root;
  for (const candidate of [error, root, inner]) {
    const status = (candidate as { status?: unknown })?.status;
    if (typeof status === 'number') return status;
  }
  return undefined;
}

interface RestReviewer {
  type?: string;
  reviewer?: { id?: number; login?: string; slug?: string; html_url?: string };
}
interface RestEnvironment {
  name: string;
  can_admins_bypass?: boolean;
  protection_rules?: Array<{
    type?: string;
    wait_timer?: number;
    prevent_self_review?: boolean;
    reviewers?: RestReviewer[];
  }>;
  deployment_branch_policy?: { protected_branches?: boolean; custom_branch_policies?: boolean } | null;
}

/** Reads the current state of the environments the file names, and resolves every reviewer. */
export async function planEnvironments(
  octokit: Octokit,
  target: { owner: string; repo: string },
  config: EnvironmentsConfig,
  options: EnvironmentsClientOptions = {},
): Promise<EnvironmentsPlan> {
  const { owner, repo } = target;
  const logger = options.logger ?? silentLogger;
  const retryOptions = { attempts: options.attempts, onRetry: (m: string) => logger.warning(m) };

  const resolved = await resolveReviewers(octokit, config, retryOptions);
  const existing = await listEnvironmentNames(octokit, owner, repo, retryOptions);

  const environments: EnvironmentPlan[] = [];
  for (const spec of config.environments) {
    const current = existing.has(spec.name)
      ? await readEnvironment(octokit, owner, repo, spec.name, spec.variables !== undefined, retryOptions)
      : emptyState();
    const reviewers = spec.reviewers.map((r) => resolved.get(reviewerKey(r))!);
    environments.push(diffEnvironment(spec, reviewers, current));
  }
  const named = new Set(config.environments.map((e) => e.name));
  return {
    owner,
    repo,
    environments,
    unmanaged: [...existing].filter((n) => !named.has(n)).sort(),
  };
}

function reviewerKey(r: { type: string; name: string }): string {
  return `${r.type}:${r.name.toLowerCase()}`;
}

function emptyState(): EnvironmentState {
  return {
    exists: false,
    waitTimerMinutes: 0,
    preventSelfReview: false,
    canAdminsBypass: true,
    reviewers: [],
    branchPolicy: { kind: 'all' },
    variables: new Map(),
  };
}

type RetryOptions = { attempts?: number; onRetry?: (message: string) => void };

async function resolveReviewers(
  octokit: Octokit,
  config: EnvironmentsConfig,
  retryOptions: RetryOptions,
): Promise<Map<string, ResolvedReviewer>> {
  const out = new Map<string, ResolvedReviewer>();
  const problems: ConfigProblem[] = [];
  for (const env of config.environments) {
    for (const ref of env.reviewers) {
      const key = reviewerKey(ref);
      if (out.has(key)) continue;
      try {
        if (ref.type === 'User') {
          const { data } = await withGitHubRetry(
            `Looking up the GitHub user ${ref.name}`,
            () => octokit.rest.users.getByUsername({ username: ref.name }),
            retryOptions,
          );
          out.set(key, { type: 'User', id: data.id, name: data.login });
        } else {
          const [org, slug] = ref.name.split('/') as [string, string];
          const { data } = await withGitHubRetry(
            `Looking up the team ${ref.name}`,
            () => octokit.rest.teams.getByName({ org, team_slug: slug }),
            retryOptions,
          );
          out.set(key, { type: 'Team', id: data.id, name: `${org}/${data.slug}` });
        }
      } catch (error) {
        if (statusOf(error) !== 404) throw error;
        problems.push({
          path: ref.path,
          problem:
            ref.type === 'User'
              ? `there is no GitHub user '${ref.name}'`
              : `there is no team '${ref.name.split('/')[1]}' in the organization '${ref.name.split('/')[0]}' (or the token may not read its teams: it needs members: read)`,
        });
      }
    }
  }
  if (problems.length > 0) {
    throw new EnvironmentsConfigError(
      '',
      problems,
      'Reviewers of the environments file were not found on GitHub',
    );
  }
  return out;
}

async function listEnvironmentNames(
  octokit: Octokit,
  owner: string,
  repo: string,
  retryOptions: RetryOptions,
): Promise<Set<string>> {
  const names = new Set<string>();
  for (let page = 1; ; page++) {
    let data: { total_count?: number; environments?: Array<{ name: string }> };
    try {
      ({ data } = await withGitHubRetry(
        `Listing the environments of ${owner}/${repo}`,
        () => octokit.rest.repos.getAllEnvironments({ owner, repo, per_page: 100, page }),
        retryOptions,
      ));
    } catch (error) {
      if (statusOf(error) === 404) {
        throw new GitHubApiError(
          `Repository ${owner}/${repo} was not found, or the token may not read it (it needs administration: read and write on the repository).`,
          { cause: error },
        );
      }
      throw error;
    }
    const list = data.environments ?? [];
    for (const env of list) names.add(env.name);
    if (list.length === 0 || names.size >= (data.total_count ?? 0)) return names;
  }
}

async function readEnvironment(
  octokit: Octokit,
  owner: string,
  repo: string,
  name: string,
  withVariables: boolean,
  retryOptions: RetryOptions,
): Promise<EnvironmentState> {
  const params = { owner, repo, environment_name: name };
  const { data } = await withGitHubRetry(
    `Reading the environment ${name}`,
    () => octokit.rest.repos.getEnvironment(params),
    retryOptions,
  );
  const env = data as RestEnvironment;
  const state: EnvironmentState = {
    ...emptyState(),
    exists: true,
    canAdminsBypass: env.can_admins_bypass ?? true,
  };
  for (const rule of env.protection_rules ?? []) {
    if (rule.type === 'wait_timer') state.waitTimerMinutes = rule.wait_timer ?? 0;
    if (rule.type === 'required_reviewers') {
      state.preventSelfReview = rule.prevent_self_review === true;
      for (const r of rule.reviewers ?? []) {
        const id = r.reviewer?.id;
        if (typeof id !== 'number') continue;
        if (r.type === 'Team') {
          const org = /\/orgs\/([^/]+)\/teams\//.exec(r.reviewer?.html_url ?? '')?.[1] ?? owner;
          state.reviewers.push({ type: 'Team', id, name: `${org}/${r.reviewer?.slug ?? id}` });
        } else {
          state.reviewers.push({ type: 'User', id, name: r.reviewer?.login ?? String(id) });
        }
      }
    }
  }
  const policy = env.deployment_branch_policy;
  if (policy?.custom_branch_policies) {
    const patterns: ExistingPolicy[] = [];
    for (let page = 1; ; page++) {
      const { data: list } = await withGitHubRetry(
        `Listing the deployment branch policies of ${name}`,
        () => octokit.rest.repos.listDeploymentBranchPolicies({ ...params, per_page: 100, page }),
        retryOptions,
      );
      const items = list.branch_policies ?? [];
      for (const p of items) {
        if (typeof p.id === 'number' && p.name) {
          patterns.push({
            id: p.id,
            name: p.name,
            type: (p as { type?: string }).type === 'tag' ? 'tag' : 'branch',
          });
        }
      }
      if (items.length === 0 || patterns.length >= list.total_count) break;
    }
    state.branchPolicy = { kind: 'custom', patterns };
  } else if (policy?.protected_branches) {
    state.branchPolicy = { kind: 'protected' };
  }
  if (withVariables) {
    let seen = 0;
    for (let page = 1; ; page++) {
      const { data: list } = await withGitHubRetry(
        `Listing the variables of ${name}`,
        () => octokit.rest.actions.listEnvironmentVariables({ ...params, per_page: 30, page }),
        retryOptions,
      );
      for (const v of list.variables) state.variables.set(v.name.toUpperCase(), v.value);
      seen += list.variables.length;
      if (list.variables.length === 0 || seen >= list.total_count) break;
    }
  }
  return state;
}

function quote(value: string): string {
  const text = value.length > 60 ? `${value.slice(0, 57)}...` : value;
  return JSON.stringify(text);
}

/** The differences between the file and the repository for one environment. */
function diffEnvironment(
  spec: EnvironmentSpec,
  reviewers: ResolvedReviewer[],
  current: EnvironmentState,
): EnvironmentPlan {
  const changes: PlannedChange[] = [];
  let settingsChange = !current.exists;

  if (spec.waitTimerMinutes !== current.waitTimerMinutes) {
    settingsChange = true;
    changes.push({
      op: current.waitTimerMinutes === 0 ? 'create' : spec.waitTimerMinutes === 0 ? 'delete' : 'update',
      what: 'wait timer',
      from: `${current.waitTimerMinutes} min`,
      to: `${spec.waitTimerMinutes} min`,
    });
  }
  const wantIds = new Set(reviewers.map((r) => `${r.type}:${r.id}`));
  const haveIds = new Set(current.reviewers.map((r) => `${r.type}:${r.id}`));
  for (const r of reviewers) {
    if (!haveIds.has(`${r.type}:${r.id}`)) {
      settingsChange = true;
      changes.push({ op: 'create', what: 'reviewer', name: `${r.name} (${r.type.toLowerCase()})` });
    }
  }
  for (const r of current.reviewers) {
    if (!wantIds.has(`${r.type}:${r.id}`)) {
      settingsChange = true;
      changes.push({ op: 'delete', what: 'reviewer', name: `${r.name} (${r.type.toLowerCase()})` });
    }
  }
  // With no reviewers GitHub drops the rule and forgets the flag: nothing to compare.
  const effectiveSelfReview = reviewers.length > 0 && spec.preventSelfReview;
  const currentSelfReview = current.reviewers.length > 0 && current.preventSelfReview;
  if (effectiveSelfReview !== currentSelfReview) {
    settingsChange = true;
    changes.push({
      op: 'update',
      what: 'prevent self-review',
      from: String(currentSelfReview),
      to: String(effectiveSelfReview),
    });
  }
  if (spec.canAdminsBypass !== current.canAdminsBypass) {
    settingsChange = true;
    changes.push({
      op: 'update',
      what: 'admins bypass',
      from: String(current.canAdminsBypass),
      to: String(spec.canAdminsBypass),
    });
  }
  if (spec.branchPolicy.kind !== current.branchPolicy.kind) {
    settingsChange = true;
    changes.push({
      op: 'update',
      what: 'policy',
      name: 'deployment branches',
      from: policyKindLabel(current.branchPolicy.kind),
      to: policyKindLabel(spec.branchPolicy.kind),
    });
  }
  const want = spec.branchPolicy.kind === 'custom' ? spec.branchPolicy.patterns : [];
  const have = current.branchPolicy.kind === 'custom' ? current.branchPolicy.patterns : [];
  const key = (p: PolicyPattern) => `${p.type}:${p.name}`;
  const haveKeys = new Set(have.map(key));
  const wantKeys = new Set(want.map(key));
  for (const p of want) {
    if (!haveKeys.has(key(p)))
      changes.push({ op: 'create', what: 'branch rule', name: `${p.name} (${p.type})` });
  }
  for (const p of have) {
    if (!wantKeys.has(key(p)))
      changes.push({ op: 'delete', what: 'branch rule', name: `${p.name} (${p.type})` });
  }
  if (spec.variables) {
    for (const [name, value] of spec.variables) {
      const old = current.variables.get(name);
      if (old === undefined) changes.push({ op: 'create', what: 'variable', name, to: quote(value) });
      else if (old !== value)
        changes.push({ op: 'update', what: 'variable', name, from: quote(old), to: quote(value) });
    }
    for (const [name, value] of current.variables) {
      if (!spec.variables.has(name))
        changes.push({ op: 'delete', what: 'variable', name, from: quote(value) });
    }
  }
  return {
    name: spec.name,
    action: !current.exists ? 'create' : changes.length > 0 ? 'update' : 'unchanged',
    changes,
    spec,
    reviewers,
    current,
    settingsChange,
  };
}

export interface AppliedEnvironment {
  name: string;
  action: EnvironmentPlan['action'];
  requests: number;
}

/** Makes the changes of a plan, environment by environment: settings, then branch rules, then variables. */
export async function applyEnvironmentsPlan(
  octokit: Octokit,
  plan: EnvironmentsPlan,
  options: EnvironmentsClientOptions = {},
): Promise<AppliedEnvironment[]> {
  const logger = options.logger ?? silentLogger;
  const retryOptions = { attempts: options.attempts, onRetry: (m: string) => logger.warning(m) };
  const { owner, repo } = plan;
  const out: AppliedEnvironment[] = [];
  for (const env of plan.environments) {
    if (env.action === 'unchanged') {
      out.push({ name: env.name, action: env.action, requests: 0 });
      continue;
    }
    const params = { owner, repo, environment_name: env.name };
    let requests = 0;
    const { spec } = env;
    if (env.settingsChange) {
      const policy =
        spec.branchPolicy.kind === 'all'
          ? null
          : {
              protected_branches: spec.branchPolicy.kind === 'protected',
              custom_branch_policies: spec.branchPolicy.kind === 'custom',
            };
      await withGitHubRetry(
        `${env.current.exists ? 'Updating' : 'Creating'} the environment ${env.name}`,
        () =>
          octokit.rest.repos.createOrUpdateEnvironment({
            ...params,
            wait_timer: spec.waitTimerMinutes,
            prevent_self_review: env.reviewers.length > 0 && spec.preventSelfReview,
            reviewers: env.reviewers.map((r) => ({ type: r.type, id: r.id })),
            deployment_branch_policy: policy,
            can_admins_bypass: spec.canAdminsBypass,
          }),
        retryOptions,
      );
      requests++;
      logger.info(`${env.name}: environment ${env.current.exists ? 'updated' : 'created'}`);
    }
    if (spec.branchPolicy.kind === 'custom') {
      const want = spec.branchPolicy.patterns;
      // A policy kind that was not custom before had no rules to keep.
      const have = env.current.branchPolicy.kind === 'custom' ? env.current.branchPolicy.patterns : [];
      for (const p of have) {
        if (want.some((w) => w.name === p.name && w.type === p.type)) continue;
        await withGitHubRetry(
          `Deleting the ${p.type} rule ${p.name} of ${env.name}`,
          () => octokit.rest.repos.deleteDeploymentBranchPolicy({ ...params, branch_policy_id: p.id }),
          retryOptions,
        );
        requests++;
        logger.info(`${env.name}: ${p.type} rule ${p.name} deleted`);
      }
      for (const p of want) {
        if (have.some((h) => h.name === p.name && h.type === p.type)) continue;
        await withGitHubRetry(
          `Creating the ${p.type} rule ${p.name} of ${env.name}`,
          () => octokit.rest.repos.createDeploymentBranchPolicy({ ...params, name: p.name, type: p.type }),
          retryOptions,
        );
        requests++;
        logger.info(`${env.name}: ${p.type} rule ${p.name} created`);
      }
    }
    if (spec.variables) {
      for (const [name, value] of spec.variables) {
        const old = env.current.variables.get(name);
        if (old === value) continue;
        if (old === undefined) {
          await withGitHubRetry(
            `Creating the variable ${name} of ${env.name}`,
            () => octokit.rest.actions.createEnvironmentVariable({ ...params, name, value }),
            retryOptions,
          );
        } else {
          await withGitHubRetry(
            `Updating the variable ${name} of ${env.name}`,
            () => octokit.rest.actions.updateEnvironmentVariable({ ...params, name, value }),
            retryOptions,
          );
        }
        requests++;
        logger.info(`${env.name}: variable ${name} ${old === undefined ? 'created' : 'updated'}`);
      }
      for (const name of env.current.variables.keys()) {
        if (spec.variables.has(name)) continue;
        await withGitHubRetry(
          `Deleting the variable ${name} of ${env.name}`,
          () => octokit.rest.actions.deleteEnvironmentVariable({ ...params, name }),
          retryOptions,
        );
        requests++;
        logger.info(`${env.name}: variable ${name} deleted`);
      }
    }
    out.push({ name: env.name, action: env.action, requests });
  }
  return out;
}

const SIGN: Record<ChangeOp, string> = { create: '+', update: '~', delete: '-' };

/** The plan as text: one block per environment, then a count. */
export function formatEnvironmentsPlan(plan: EnvironmentsPlan): string {
  const lines: string[] = [`Environments of ${plan.owner}/${plan.repo}:`, ''];
  for (const env of plan.environments) {
    const head = env.action === 'create' ? '+' : env.action === 'update' ? '~' : '=';
    lines.push(`${head} ${env.name} (${env.action === 'unchanged' ? 'no changes' : env.action})`);
    for (const c of env.changes) {
      const subject = c.name ? `${c.what} ${c.name}` : c.what;
      const detail =
        c.op === 'update' && c.from !== undefined
          ? `: ${c.from} -> ${c.to}`
          : c.op === 'create' && c.to !== undefined
            ? ` = ${c.to}`
            : '';
      lines.push(`    ${SIGN[c.op]} ${subject}${detail}`);
    }
  }
  for (const name of plan.unmanaged) lines.push(`  ${name} (not in the file: left as it is)`);
  const count = (a: EnvironmentPlan['action']) => plan.environments.filter((e) => e.action === a).length;
  const total = plan.environments.reduce((n, e) => n + e.changes.length, 0);
  lines.push(
    '',
    `Plan: ${count('create')} to create, ${count('update')} to update, ${count('unchanged')} unchanged (${total} change${total === 1 ? '' : 's'}).`,
  );
  return lines.join('\n');
}

export function planHasChanges(plan: EnvironmentsPlan): boolean {
  return plan.environments.some((e) => e.action !== 'unchanged');
}
