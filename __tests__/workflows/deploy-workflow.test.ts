import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { LocalGitHub } from '../../tooling/local-services/local-github.ts';
import { REPO_ROOT } from '../../tooling/runners/action-runner.ts';
import { type JobRecord, WorkflowRunner } from '../../tooling/runners/workflow-runner.ts';
import {
  mainPush,
  useServer,
  useWorkflowWorkspace,
  writeCaller,
} from '../../tooling/test-support/fixtures.ts';

/**
 * deploy.yml's own guards, run through the local workflow runner: the inputs checked before any
 * approval or change, the job timeout worked out from the soak, and the newer-release check that
 * keeps an approved older run from deploying an image a newer release replaced.
 */

const IMAGE = `ghcr.io/acme/shop@sha256:${'1'.repeat(64)}`;
const NEWER = `ghcr.io/acme/shop@sha256:${'2'.repeat(64)}`;

const workspace = useWorkflowWorkspace('deploy-wf-');
const github = useServer('LocalGitHub', () => LocalGitHub.start({ tokens: ['ghs_x'] }));

async function runDeploy(withInputs: Record<string, string>): Promise<{ jobs: Record<string, JobRecord> }> {
  const file = writeCaller(workspace, {
    environment: 'production',
    app: 'shop',
    image: IMAGE,
    ...withInputs,
  });
  const runner = new WorkflowRunner({
    repoRoot: REPO_ROOT,
    workspace,
    event: mainPush(),
    secrets: {},
    vars: {},
    env: {},
    githubApiUrl: github.url,
    token: 'ghs_x',
    requiresApproval: () => false,
    approve: async () => true,
  });
  const run = await runner.runWorkflow(file);
  return { jobs: Object.fromEntries(run.jobs.map((j) => [j.path, j])) };
}

describe('deploy.yml checks its inputs in a job of its own, before any approval or change', () => {
  test.each([
    [{ strategy: 'bluegreen' }, "strategy is 'bluegreen'; accepted: rolling, canary or blue-green"],
    [
      { soak: '15 minutes' },
      "soak is '15 minutes'; accepted: a duration such as 500ms, 90s, 5m, 1h30m or 2d (a bare number is seconds), at most 7d",
    ],
    // The limits pipeline.yml's first job applies, for callers of deploy.yml alone.
    [{ soak: '8d', 'runs-on': 'self-hosted' }, "soak is '8d'; accepted: a duration such as 500ms"],
    [{ interval: '50ms' }, "interval is '50ms'; accepted: a duration such as 500ms"],
    [{ timeout: '2d' }, "timeout is '2d'; accepted: a duration such as 500ms"],
    [{ 'canary-steps': '10:soon,100', strategy: 'canary' }, "canary-steps has the pause 'soon'"],
    [
      { 'canary-steps': '50,10,100', strategy: 'canary' },
      'canary-steps has 10 after 50; the weights are not increasing',
    ],
    [
      { 'canary-steps': '10,150', strategy: 'canary' },
      'canary-steps has the weight 150, which is not from 1 to 100',
    ],
    [
      { 'canary-steps': '10:8d,100', strategy: 'canary', 'runs-on': 'self-hosted' },
      "canary-steps has the pause '8d'",
    ],
    [{ soak: '80h', 'runs-on': 'self-hosted' }, 'a GitHub job lives at most 72h (at most 4320 minutes)'],
    [
      { soak: '5h40m' },
      "soak is '5h40m': with the canary pauses and the rollout deadline the job would need 375 minutes, and a GitHub-hosted runner (ubuntu-latest) ends a job after 6h (at most 360 minutes)",
    ],
  ])(
    '%j fails the plan job with one clear error, and the deploy job never starts',
    async (inputs, message) => {
      const { jobs } = await runDeploy(inputs);
      const plan = jobs['production/plan']!;
      expect(plan.conclusion).toBe('failure');
      expect(plan.steps[0]!.log).toContain(`::error title=invalid input::`);
      expect(plan.steps[0]!.log).toContain(message);
      expect(jobs['production/deploy']).toMatchObject({ conclusion: 'skipped', steps: [] });
      // Told to the caller as a failure of this environment, never as an approval not given.
      expect(jobs.production!.outputs).toMatchObject({ environment: 'production', ended: 'failed' });
      expect(jobs.production!.outputs.reason).toContain('The inputs of production are invalid');
    },
  );

  test('a self-hosted runner may run a soak longer than a hosted job lives', async () => {
    const { jobs } = await runDeploy({ soak: '5h40m', 'runs-on': 'self-hosted', 'promoted-from': 'nowhere' });
    expect(jobs['production/plan']!.conclusion).toBe('success');
    expect(jobs['production/plan']!.outputs['timeout-minutes']).toBe('375');
  });

  test('the deploy job lives for the soak, the canary pauses and twice the rollout deadline, plus 15 minutes', async () => {
    const { jobs } = await runDeploy({
      strategy: 'canary',
      soak: '1h30m',
      'canary-steps': '10:2m,50:5m,100',
      timeout: '10m',
      'promoted-from': 'nowhere',
    });
    // 90m + 7m + 20m + 15m
    expect(jobs['production/plan']!.outputs['timeout-minutes']).toBe('132');
  });
});

describe('the newer-release check right before deploying', () => {
  test('an approved run whose image staging no longer runs ends as superseded and changes nothing', async () => {
    const staging = github.seedDeployment({
      owner: 'acme',
      repo: 'shop',
      environment: 'staging',
      payload: { app: 'shop', images: { 'ghcr.io/acme/shop': NEWER } },
    });
    staging.statuses.push({
      id: 1,
      state: 'success',
      description: '',
      environment: 'staging',
      environment_url: '',
      log_url: '',
      created_at: new Date().toISOString(),
    });
    const { jobs } = await runDeploy({
      strategy: 'canary',
      'promoted-from': 'staging',
      'migrations-dir': 'migrations',
    });
    const deploy = jobs['production/deploy']!;
    expect(deploy.conclusion).toBe('failure');
    const step = (id: string) => deploy.steps.find((s) => s.id === id)!;
    expect(step('newer').log).toContain(`staging now runs ${NEWER}, a newer release than ${IMAGE}`);
    for (const id of ['plan', 'migrate', 'rolling', 'canary', 'bluegreen', 'gate', 'rollback'])
      expect(step(id).conclusion).toBe('skipped');
    expect(deploy.outputs).toMatchObject({ environment: 'production', ended: 'superseded' });
    expect(deploy.outputs.reason).toContain(NEWER);
    expect(jobs.production!.outputs).toMatchObject({ ended: 'superseded', environment: 'production' });
  });

  test('the newest release in staging passes the check', async () => {
    const staging = github.seedDeployment({
      owner: 'acme',
      repo: 'shop',
      environment: 'staging',
      payload: { app: 'shop', images: { 'ghcr.io/acme/shop': IMAGE } },
    });
    staging.statuses.push({
      id: 2,
      state: 'success',
      description: '',
      environment: 'staging',
      environment_url: '',
      log_url: '',
      created_at: new Date().toISOString(),
    });
    const { jobs } = await runDeploy({ strategy: 'canary', 'promoted-from': 'staging' });
    const newer = jobs['production/deploy']!.steps.find((s) => s.id === 'newer')!;
    expect(newer.conclusion).toBe('success');
    expect(newer.log).toContain(`${IMAGE} is still the newest release in staging`);
  });
});

describe("deploy.yml's concurrency group", () => {
  test('production runs never share a group (none cancels another); dev and staging share one per app', async () => {
    const { parse } = await import('yaml');
    const { evaluateExpression } = await import('../../tooling/runners/expressions.ts');
    const doc = parse(readFileSync(join(REPO_ROOT, '.github', 'workflows', 'deploy.yml'), 'utf8')) as {
      jobs: { deploy: { concurrency: { group: string; 'cancel-in-progress': boolean } } };
    };
    const { group, 'cancel-in-progress': cancel } = doc.jobs.deploy.concurrency;
    expect(cancel).toBe(false);
    const expression = /^\$\{\{(.*)\}\}$/s.exec(group)![1]!;
    const groupOf = (environment: string, promotedFrom: string, runId: string) =>
      evaluateExpression(expression, {
        inputs: { app: 'shop', environment, 'promoted-from': promotedFrom },
        github: { run_id: runId },
      });
    expect(groupOf('production', 'staging', '7')).toBe('deploy-shop-production-7');
    expect(groupOf('production', 'staging', '8')).toBe('deploy-shop-production-8');
    expect(groupOf('staging', '', '7')).toBe('deploy-shop-staging');
    expect(groupOf('staging', '', '8')).toBe('deploy-shop-staging');
  });
});
