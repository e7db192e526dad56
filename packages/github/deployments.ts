import type { Clock } from '../core/index.ts';
import { GitHubApiError, type Octokit, withGitHubRetry } from './client.ts';
import type { DeploymentState } from './deployment-states.ts';

// deploy-env reaches the client and the states through this module.
export { createOctokit, type Octokit } from './client.ts';
export * from './deployment-states.ts';

export interface DeploymentStatusRequest {
  owner: string;
  repo: string;
  deploymentId: number;
  state: DeploymentState;
  description?: string;
  environment?: string;
  environmentUrl?: string;
  logUrl?: string;
  autoInactive?: boolean;
}

export async function createDeploymentStatus(
  octokit: Octokit,
  request: DeploymentStatusRequest,
  options: { attempts?: number; clock?: Clock; onRetry?: (message: string) => void } = {},
): Promise<{ id: number; url: string }> {
  const response = await withGitHubRetry(
    `Creating the '${request.state}' status of deployment ${request.deploymentId}`,
    () =>
      octokit.rest.repos.createDeploymentStatus({
        owner: request.owner,
        repo: request.repo,
        deployment_id: request.deploymentId,
        state: request.state,
        ...(request.description ? { description: request.description.slice(0, 140) } : {}),
        ...(request.environment ? { environment: request.environment } : {}),
        ...(request.environmentUrl ? { environment_url: request.environmentUrl } : {}),
        ...(request.logUrl ? { log_url: request.logUrl } : {}),
        ...(request.autoInactive !== undefined ? { auto_inactive: request.autoInactive } : {}),
      }),
    options,
  );
  return { id: response.data.id, url: response.data.url };
}

export interface CreateDeploymentRequest {
  owner: string;
  repo: string;
  ref: string;
  environment: string;
  description?: string;
  payload: Record<string, unknown>;
  productionEnvironment: boolean;
  transientEnvironment: boolean;
}

/**
 * A GitHub Deployment for the environment. `required_contexts: []` because the pipeline's own
 * jobs are the checks; `auto_merge: false` because a deploy never merges branches.
 */
export async function createDeployment(
  octokit: Octokit,
  request: CreateDeploymentRequest,
  options: { attempts?: number; clock?: Clock; onRetry?: (message: string) => void } = {},
): Promise<{ id: number; url: string }> {
  const response = await withGitHubRetry(
    `Creating a GitHub deployment for ${request.environment}`,
    () =>
      octokit.rest.repos.createDeployment({
        owner: request.owner,
        repo: request.repo,
        ref: request.ref,
        environment: request.environment,
        auto_merge: false,
        required_contexts: [],
        payload: request.payload as never,
        production_environment: request.productionEnvironment,
        transient_environment: request.transientEnvironment,
        ...(request.description ? { description: request.description.slice(0, 140) } : {}),
      }),
    { ...options, createsResource: true },
  );
  const data = response.data as { id?: number; url?: string; message?: string };
  if (!data.id)
    throw new GitHubApiError(
      `Creating a GitHub deployment for ${request.environment} returned no deployment: ${data.message ?? 'unknown reason'}`,
    );
  return { id: data.id, url: data.url ?? '' };
}
