import { readFileSync } from 'node:fs';

/** What a step knows about the workflow run it is part of, read from the runner's GITHUB_* variables. */
export interface RunContext {
  serverUrl: string;
  apiUrl: string;
  repository: string;
  owner: string;
  repo: string;
  sha: string;
  ref: string;
  /** The branch (or tag) the run is for: the PR's head branch on pull_request events. */
  branch: string;
  actor: string;
  eventName: string;
  workflow: string;
  job: string;
  runId: string;
  runAttempt: string;
  runUrl: string;
  commitUrl: string;
  /** First line of the commit message or PR title when the event carries one. Untrusted text. */
  commitTitle: string | undefined;
  payload: Record<string, unknown>;
}

export function readRunContext(env: NodeJS.ProcessEnv): RunContext {
  const serverUrl = (env.GITHUB_SERVER_URL || 'https://github.com').replace(/\/+$/, '');
  const repository = env.GITHUB_REPOSITORY || '';
  const [owner = '', repo = ''] = repository.split('/');
  const sha = env.GITHUB_SHA || '';
  const runId = env.GITHUB_RUN_ID || '';
  const runAttempt = env.GITHUB_RUN_ATTEMPT || '1';
  let payload: Record<string, unknown> = {};
  if (env.GITHUB_EVENT_PATH) {
    try {
      payload = JSON.parse(readFileSync(env.GITHUB_EVENT_PATH, 'utf8')) as Record<string, unknown>;
    } catch {
      payload = {};
    }
  }
  const pr = payload.pull_request as { title?: unknown; head?: { sha?: unknown } } | undefined;
  const headCommit = payload.head_commit as { message?: unknown } | undefined;
  const rawTitle =
    typeof pr?.title === 'string'
      ? pr.title
      : typeof headCommit?.message === 'string'
        ? headCommit.message
        : undefined;
  return {
    serverUrl,
    apiUrl: (env.GITHUB_API_URL || 'https://api.github.com').replace(/\/+$/, ''),
    repository,
    owner,
    repo,
    sha,
    ref: env.GITHUB_REF || '',
    branch:
      env.GITHUB_HEAD_REF ||
      env.GITHUB_REF_NAME ||
      (env.GITHUB_REF || '').replace(/^refs\/(heads|tags)\//, ''),
    actor: env.GITHUB_TRIGGERING_ACTOR || env.GITHUB_ACTOR || '',
    eventName: env.GITHUB_EVENT_NAME || '',
    workflow: env.GITHUB_WORKFLOW || '',
    job: env.GITHUB_JOB || '',
    runId,
    runAttempt,
    runUrl:
      repository && runId
        ? `${serverUrl}/${repository}/actions/runs/${runId}${runAttempt !== '1' ? `/attempts/${runAttempt}` : ''}`
        : '',
    commitUrl: repository && sha ? `${serverUrl}/${repository}/commit/${sha}` : '',
    commitTitle: rawTitle?.split('\n')[0]?.trim() || undefined,
    payload,
  };
}
