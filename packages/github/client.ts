import { getOctokit } from '@actions/github';
import { type Clock, PipelineError, parseRetryAfter, type RetryDecision, retry } from '../core/index.ts';

/**
 * The one place an Octokit is made, and how its faults are retried and named: deployments, deployment
 * statuses, environments, release records and the compare API all go through it.
 */

export type Octokit = ReturnType<typeof getOctokit>;

export interface GitHubClientOptions {
  token: string;
  /** REST base URL; defaults to the runner's GITHUB_API_URL, then api.github.com. */
  apiUrl?: string;
}

export function createOctokit(options: GitHubClientOptions): Octokit {
  const baseUrl = options.apiUrl || process.env.GITHUB_API_URL || 'https://api.github.com';
  return getOctokit(options.token, { baseUrl, request: { retries: 0 } });
}

/**
 * Octokit reports a request that never got an answer (DNS, refused or reset connection, TLS) as
 * HTTP 500 without a response. What failed is the network, and it is named as such: the code and
 * message of the innermost cause, such as `ENOTFOUND: getaddrinfo ENOTFOUND api.example.com`.
 */
export function networkFailure(error: unknown): { code: string | undefined; message: string } | undefined {
  const e = error as { status?: number; response?: unknown; cause?: unknown; message?: string };
  if (!e || typeof e !== 'object' || e.response !== undefined) return undefined;
  if (e.status !== undefined && e.status !== 500) return undefined;
  let inner: unknown = e;
  for (let depth = 0; depth < 5; depth++) {
    const next = (inner as { cause?: unknown }).cause;
    if (!next || typeof next !== 'object') break;
    inner = next;
  }
  const code = (inner as { code?: unknown }).code;
  if (e.status === undefined && typeof code !== 'string') return undefined;
  return {
    code: typeof code === 'string' ? code : undefined,
    message: (inner as Error).message ?? e.message ?? String(error),
  };
}

/** Codes of a request that cannot have reached GitHub: repeating it cannot create anything twice. */
const NEVER_SENT = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'ENETUNREACH', 'EHOSTUNREACH']);

/** Octokit's RequestError: retry throttling (secondary limits send 403 with Retry-After), 5xx and network errors. */
export function classifyGitHubError(error: unknown): RetryDecision {
  const network = networkFailure(error);
  if (network)
    return { retry: true, reason: `GitHub API not reachable (${network.code ?? network.message})` };
  const e = error as { status?: number; response?: { headers?: Record<string, string | undefined> } };
  const status = typeof e?.status === 'number' ? e.status : undefined;
  if (status === undefined) return { retry: false };
  const headers = e.response?.headers ?? {};
  const afterMs = parseRetryAfter(headers['retry-after']);
  if (
    status === 429 ||
    (status === 403 && (afterMs !== undefined || headers['x-ratelimit-remaining'] === '0'))
  ) {
    return { retry: true, reason: `GitHub API rate limit (HTTP ${status})`, afterMs: afterMs ?? 60_000 };
  }
  if (status >= 500) return { retry: true, reason: `GitHub API answered HTTP ${status}` };
  return { retry: false };
}

export class GitHubApiError extends PipelineError {}

export async function withGitHubRetry<T>(
  what: string,
  call: () => Promise<T>,
  options: {
    attempts?: number;
    clock?: Clock;
    onRetry?: (message: string) => void;
    /** A create that a 5xx may have completed is not repeated (only throttling is). */
    createsResource?: boolean;
  } = {},
): Promise<T> {
  try {
    return await retry(call, {
      attempts: options.attempts ?? 4,
      classify: options.createsResource
        ? (error) => {
            const network = networkFailure(error);
            if (network)
              return NEVER_SENT.has(network.code ?? '') ? classifyGitHubError(error) : { retry: false };
            return ((error as { status?: number }).status ?? 0) >= 500
              ? { retry: false }
              : classifyGitHubError(error);
          }
        : classifyGitHubError,
      clock: options.clock,
      onRetry: ({ delayMs, reason }) => options.onRetry?.(`${what}: ${reason}; retrying in ${delayMs} ms`),
    });
  } catch (error) {
    const root = (error as { cause?: unknown }).cause ?? error;
    const network = networkFailure(root);
    if (network)
      throw new GitHubApiError(
        `${what} failed: the GitHub API could not be reached (${network.code ? `${network.code}: ` : ''}${network.message})`,
        { cause: error },
      );
    const status = (root as { status?: number }).status;
    const message = (root as Error).message ?? String(root);
    throw new GitHubApiError(`${what} failed${status ? ` (HTTP ${status})` : ''}: ${message}`, {
      cause: error,
    });
  }
}
