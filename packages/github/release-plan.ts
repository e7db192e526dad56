import type { Clock } from '../core/index.ts';
import { type Octokit, withGitHubRetry } from './client.ts';

/**
 * What the production plan reads from GitHub before anyone is asked to approve: where the image
 * ran before (a deployment of the same digest in an earlier environment, with its last status)
 * and which commits it brings since production's last successful release (the compare API).
 */

export interface Repository {
  owner: string;
  repo: string;
}

interface CallOptions {
  attempts?: number;
  clock?: Clock;
  onRetry?: (message: string) => void;
}

export interface DeploymentVerdict {
  id: number;
  sha: string;
  environment: string;
  createdAt: string;
  /** The newest status that is not `inactive` (GitHub sets that on older deployments once a newer one succeeds). */
  state: string;
  description: string;
  logUrl: string;
  /** Whether the deployment ever reached `success`. */
  succeeded: boolean;
  /** The health gate's verdict over the soak window, when deploy.yml recorded one. */
  soak?: SoakVerdict;
}

export interface SoakVerdict {
  verdict: 'passed' | 'failed' | 'inconclusive';
  /** The status's whole description: verdict, rounds, window and checks (health-gate's verdict-line). */
  description: string;
}

/** How health-gate's verdict-line starts (packages/health/summary.ts), as deploy.yml records it. */
const SOAK_STATUS = /^health gate (passed|failed|inconclusive)\b/;

/** The newest status that records a health gate's verdict; statuses come newest first. */
function soakVerdictOf(statuses: { description?: string | null }[]): SoakVerdict | undefined {
  for (const s of statuses) {
    const m = SOAK_STATUS.exec(s.description ?? '');
    if (m) return { verdict: m[1] as SoakVerdict['verdict'], description: s.description! };
  }
  return undefined;
}

/** GitHub lists at most 100 per page; older deployments than that are not the ones a release is about. */
const PAGE = 100;

/** The digest part of an image reference (`sha256:…`), or the whole reference when it has none. */
function imageDigest(image: string): string {
  const at = image.lastIndexOf('@');
  return at >= 0 ? image.slice(at + 1) : image;
}

function deploysImage(payload: unknown, description: string | null | undefined, image: string): boolean {
  const digest = imageDigest(image);
  const images = (payload as { images?: unknown } | null)?.images;
  if (images && typeof images === 'object')
    return Object.values(images as Record<string, unknown>).some(
      (ref) => typeof ref === 'string' && imageDigest(ref) === digest,
    );
  // Deployments recorded without a payload of images (a workflow's own record) name it in words.
  return digest.startsWith('sha256:') && (description ?? '').includes(digest);
}

async function verdictOf(
  octokit: Octokit,
  repository: Repository,
  deployment: { id: number; sha: string; environment: string; created_at: string },
  options: CallOptions,
): Promise<DeploymentVerdict> {
  const statuses = await withGitHubRetry(
    `Reading the statuses of deployment ${deployment.id}`,
    () =>
      octokit.rest.repos.listDeploymentStatuses({
        ...repository,
        deployment_id: deployment.id,
        per_page: PAGE,
      }),
    options,
  );
  // Newest first, as GitHub lists them.
  const latest = statuses.data.find((s) => s.state !== 'inactive') ?? statuses.data[0];
  const soak = soakVerdictOf(statuses.data);
  return {
    id: deployment.id,
    sha: deployment.sha,
    environment: deployment.environment,
    createdAt: deployment.created_at,
    state: latest?.state ?? 'pending',
    description: latest?.description ?? '',
    logUrl: latest?.log_url ?? '',
    succeeded: statuses.data.some((s) => s.state === 'success'),
    ...(soak ? { soak } : {}),
  };
}

/** The newest deployments of `environment`, newest first (one page). */
function listDeploymentsOf(
  octokit: Octokit,
  repository: Repository,
  environment: string,
  options: CallOptions,
) {
  return withGitHubRetry(
    `Listing the GitHub deployments of ${environment}`,
    () => octokit.rest.repos.listDeployments({ ...repository, environment, per_page: PAGE }),
    options,
  );
}

/**
 * The newest deployment of `image` (matched by digest) in `environment`, with its last status;
 * undefined when the environment never had it.
 */
async function findDeploymentOfImage(
  octokit: Octokit,
  repository: Repository,
  environment: string,
  image: string,
  options: CallOptions = {},
): Promise<DeploymentVerdict | undefined> {
  const list = await listDeploymentsOf(octokit, repository, environment, options);
  const match = list.data.find((d) => deploysImage(d.payload, d.description, image));
  return match ? verdictOf(octokit, repository, match, options) : undefined;
}

/** The newest deployment of `environment` that reached `success`: the release production runs now. */
async function lastSuccessfulDeployment(
  octokit: Octokit,
  repository: Repository,
  environment: string,
  options: CallOptions = {},
): Promise<DeploymentVerdict | undefined> {
  const list = await listDeploymentsOf(octokit, repository, environment, options);
  for (const d of list.data) {
    const verdict = await verdictOf(octokit, repository, d, options);
    if (verdict.succeeded && verdict.state !== 'failure' && verdict.state !== 'error') return verdict;
  }
  return undefined;
}

export interface ComparedCommit {
  sha: string;
  /** First line of the message. */
  title: string;
  /** The GitHub login when the commit is linked to an account, else the git author name. */
  author: string;
  authorIsLogin: boolean;
  url: string;
  /** Pull request numbers the message names (`Merge pull request #42`, a squash merge's `(#42)`). */
  pullRequests: number[];
}

export interface Comparison {
  status: string;
  aheadBy: number;
  behindBy: number;
  totalCommits: number;
  /** Oldest first, as GitHub lists them; GitHub returns at most 250. */
  commits: ComparedCommit[];
  htmlUrl: string;
}

const PR_PATTERNS = [/^Merge pull request #(\d+)\b/, /\(#(\d+)\)\s*$/];

function pullRequestsOf(title: string): number[] {
  const found = new Set<number>();
  for (const pattern of PR_PATTERNS) {
    const m = pattern.exec(title);
    if (m) found.add(Number(m[1]));
  }
  return [...found];
}

/** `GET /repos/{owner}/{repo}/compare/{base}...{head}`: the commits `head` has that `base` has not. */
async function compareCommits(
  octokit: Octokit,
  repository: Repository,
  base: string,
  head: string,
  options: CallOptions = {},
): Promise<Comparison> {
  const response = await withGitHubRetry(
    `Comparing ${base.slice(0, 12)}...${head.slice(0, 12)}`,
    () => octokit.rest.repos.compareCommitsWithBasehead({ ...repository, basehead: `${base}...${head}` }),
    options,
  );
  const data = response.data;
  return {
    status: data.status,
    aheadBy: data.ahead_by,
    behindBy: data.behind_by,
    totalCommits: data.total_commits,
    htmlUrl: data.html_url,
    commits: data.commits.map((c) => {
      const title = (c.commit.message ?? '').split('\n')[0] ?? '';
      const login = c.author && 'login' in c.author ? c.author.login : undefined;
      return {
        sha: c.sha,
        title,
        author: login || c.commit.author?.name || 'unknown',
        authorIsLogin: Boolean(login),
        url: c.html_url,
        pullRequests: pullRequestsOf(title),
      };
    }),
  };
}

export interface ReleasePlanRequest extends Repository, CallOptions {
  token: string;
  apiUrl?: string;
  /** This run's commit: the head of the comparison. */
  head: string;
  /** The image reference production would get. */
  version: string;
  /** The environment that must have run `version` first. */
  provenance?: string;
  /** The environment whose last successful release is the base of the commits. */
  commitsSince?: string;
}

export interface ReleasePlan {
  provenance?: {
    environment: string;
    image: string;
    deployment?: Omit<DeploymentVerdict, 'environment' | 'succeeded'>;
  };
  commits?: {
    environment: string;
    head: string;
    base?: { sha: string; deploymentId: number; createdAt: string };
    total?: number;
    commits: ComparedCommit[];
    compareUrl?: string;
    problem?: string;
  };
}

/**
 * Both questions at once. A comparison GitHub refuses (a base rewritten out of the history: 404)
 * is told in the plan rather than failing it; other faults are retried, then thrown.
 */
export async function readReleasePlan(request: ReleasePlanRequest): Promise<ReleasePlan> {
  const { createOctokit } = await import('./client.ts');
  const octokit = createOctokit({
    token: request.token,
    ...(request.apiUrl ? { apiUrl: request.apiUrl } : {}),
  });
  const repository = { owner: request.owner, repo: request.repo };
  const options: CallOptions = {
    ...(request.attempts ? { attempts: request.attempts } : {}),
    ...(request.clock ? { clock: request.clock } : {}),
    ...(request.onRetry ? { onRetry: request.onRetry } : {}),
  };
  const plan: ReleasePlan = {};
  if (request.provenance) {
    const found = await findDeploymentOfImage(
      octokit,
      repository,
      request.provenance,
      request.version,
      options,
    );
    plan.provenance = {
      environment: request.provenance,
      image: request.version,
      ...(found
        ? {
            deployment: {
              id: found.id,
              sha: found.sha,
              createdAt: found.createdAt,
              state: found.state,
              description: found.description,
              logUrl: found.logUrl,
              ...(found.soak ? { soak: found.soak } : {}),
            },
          }
        : {}),
    };
  }
  if (request.commitsSince) {
    const environment = request.commitsSince;
    const last = await lastSuccessfulDeployment(octokit, repository, environment, options);
    if (!last) plan.commits = { environment, head: request.head, commits: [] };
    else {
      const base = { sha: last.sha, deploymentId: last.id, createdAt: last.createdAt };
      try {
        const compared = await compareCommits(octokit, repository, last.sha, request.head, options);
        plan.commits = {
          environment,
          head: request.head,
          base,
          total: compared.totalCommits,
          commits: compared.commits,
          compareUrl: compared.htmlUrl,
          ...(compared.status === 'behind' || compared.status === 'diverged'
            ? {
                problem: `this commit is ${compared.status} ${environment}'s (${compared.behindBy} commit(s) of ${environment} are not in it): production would lose them`,
              }
            : {}),
        };
      } catch (error) {
        const status = httpStatusOf(error);
        if (status !== 404 && status !== 422) throw error;
        plan.commits = {
          environment,
          head: request.head,
          base,
          commits: [],
          problem: `GitHub cannot compare ${last.sha.slice(0, 7)} (${environment}'s last release) with ${request.head.slice(0, 7)} (HTTP ${status}): the commit is no longer in the repository's history.`,
        };
      }
    }
  }
  return plan;
}

/** The HTTP status somewhere down a wrapped error's causes (retry and GitHubApiError wrap Octokit's). */
function httpStatusOf(error: unknown): number | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 5 && e && typeof e === 'object'; depth++) {
    const status = (e as { status?: unknown }).status;
    if (typeof status === 'number') return status;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
