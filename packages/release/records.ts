/**
 * The GitHub side of release control: the environment's deployment history (for a known-good
 * release) and the pin a rollback leaves on the environment (an environment variable, so the
 * deploy job reads it as vars.PIPELINE_PIN and anyone with admin rights lifts it by deleting it).
 */

import { type Octokit, withGitHubRetry } from '../github/client.ts';
import type { RecordedDeployment } from './known-good.ts';

export const PIN_VARIABLE = 'PIPELINE_PIN';

interface Repo {
  owner: string;
  repo: string;
}

/** The newest deployments of an environment, each with its newest status's state. */
export async function listDeployments(
  octokit: Octokit,
  where: Repo & { environment: string },
  options: { limit?: number; onRetry?: (m: string) => void } = {},
): Promise<RecordedDeployment[]> {
  const { data } = await withGitHubRetry(
    `Listing the deployments of ${where.environment}`,
    () =>
      octokit.rest.repos.listDeployments({
        owner: where.owner,
        repo: where.repo,
        environment: where.environment,
        per_page: Math.min(options.limit ?? 50, 100),
      }),
    options,
  );
  const out: RecordedDeployment[] = [];
  for (const d of data) {
    const statuses = await withGitHubRetry(
      `Reading the statuses of deployment ${d.id}`,
      () =>
        octokit.rest.repos.listDeploymentStatuses({
          owner: where.owner,
          repo: where.repo,
          deployment_id: d.id,
          per_page: 1,
        }),
      options,
    );
    out.push({
      id: d.id,
      sha: d.sha,
      environment: d.environment,
      createdAt: d.created_at,
      state: statuses.data[0]?.state ?? 'pending',
      payload:
        typeof d.payload === 'object' && d.payload !== null ? (d.payload as Record<string, unknown>) : {},
    });
  }
  return out;
}

/** Creates or replaces an environment variable. */
export async function setEnvironmentVariable(
  octokit: Octokit,
  where: Repo & { environment: string },
  name: string,
  value: string,
  options: { onRetry?: (m: string) => void } = {},
): Promise<void> {
  const path = {
    owner: where.owner,
    repo: where.repo,
    environment_name: where.environment,
  };
  try {
    await withGitHubRetry(
      `Setting ${name} on the ${where.environment} environment`,
      () =>
        octokit.request('POST /repos/{owner}/{repo}/environments/{environment_name}/variables', {
          ...path,
          name,
          value,
        }),
      options,
    );
  } catch (error) {
    const cause = (error as { cause?: { status?: number; cause?: { status?: number } } }).cause;
    const status = cause?.status ?? cause?.cause?.status;
    if (status !== 409) throw error;
    await withGitHubRetry(
      `Updating ${name} on the ${where.environment} environment`,
      () =>
        octokit.request('PATCH /repos/{owner}/{repo}/environments/{environment_name}/variables/{name}', {
          ...path,
          name,
          value,
        }),
      options,
    );
  }
}
