import { beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import { LocalGitHub } from '../../tooling/local-services/local-github.ts';
import { LocalSlack } from '../../tooling/local-services/local-slack.ts';
import { REPO_ROOT } from '../../tooling/runners/action-runner.ts';
import { type JobRecord, type WorkflowRun, WorkflowRunner } from '../../tooling/runners/workflow-runner.ts';
import {
  mainPush,
  useKubeSim,
  useServer,
  useWorkflowWorkspace,
  writeCaller,
} from '../../tooling/test-support/fixtures.ts';

/**
 * Deploy windows, freezes and break glass through deploy.yml in the local workflow runner, with a
 * controlled clock (PIPELINE_NOW, moved while the approval waits), against kube-sim, the local
 * Slack and the local GitHub. A blocked deploy changes nothing in the cluster and ends as
 * blocked, never failed.
 */

const IMAGE = `ghcr.io/acme/shop@sha256:${'3'.repeat(64)}`;
const NEXT = `ghcr.io/acme/shop@sha256:${'4'.repeat(64)}`;
const WINDOWS =
  'production: { timezone: Europe/Berlin, deny: [Fri 12:00 - Mon 08:00], holidays: [2026-12-24] }';
const THURSDAY = '2026-12-03T10:00:00Z';
const FRIDAY_BEFORE_NOON = '2026-12-04T10:50:00Z';
const FRIDAY_AFTERNOON = '2026-12-04T14:00:00Z';
const FREEZE = JSON.stringify({
  environments: '*',
  by: 'alice',
  at: '2026-12-01T09:00:00Z',
  reason: 'incident 4711',
});

const sim = useKubeSim({
  timeScale: 50,
  namespaces: ['shop-production'],
  images: [IMAGE, NEXT].map((pattern) => ({ pattern, http: { health: { status: 'healthy' } } })),
});
const github = useServer('LocalGitHub', () => LocalGitHub.start({ tokens: ['ghs_rc'] }));
const slack = useServer('LocalSlack', () =>
  LocalSlack.start({ tokens: ['xoxb-rc'], channels: { deploys: 'C0DEPLOYS' } }),
);
const workspace = useWorkflowWorkspace('release-control-', { exampleK8s: true });
beforeAll(() => {
  github.seedTeam('acme', 'sre', 'SRE', ['carol']);
});
beforeEach(() => {
  slack.messages.length = 0;
});

interface Played {
  run: WorkflowRun;
  jobs: Record<string, JobRecord>;
  approvals: number;
}

async function play(options: {
  now: string;
  vars?: Record<string, string>;
  inputs?: Record<string, string>;
  actor?: string;
  /** Runs while the production approval waits: move the clock, set a freeze. */
  whileWaiting?: (env: Record<string, string>, vars: Record<string, string>) => void;
}): Promise<Played> {
  const inputs = {
    environment: 'production',
    app: 'shop',
    image: IMAGE,
    'slack-channel': 'deploys',
    windows: WINDOWS,
    ...options.inputs,
  };
  const file = writeCaller(workspace, inputs);
  const env: Record<string, string> = {
    PIPELINE_TIME_SCALE: '50',
    GITHUB_API_URL: github.url,
    PIPELINE_NOW: options.now,
  };
  const vars: Record<string, string> = { PIPELINE_SLACK_API_URL: slack.apiUrl, ...options.vars };
  let approvals = 0;
  const runner = new WorkflowRunner({
    repoRoot: REPO_ROOT,
    workspace,
    event: mainPush(options.actor ? { actor: options.actor } : {}),
    secrets: { SLACK_BOT_TOKEN: 'xoxb-rc', KUBECONFIG: sim.kubeconfig },
    vars,
    env,
    githubApiUrl: github.url,
    token: 'ghs_rc',
    requiresApproval: (e) => e === 'production',
    approve: async () => {
      approvals += 1;
      options.whileWaiting?.(env, vars);
      return true;
    },
  });
  const run = await runner.runWorkflow(file);
  return { run, jobs: Object.fromEntries(run.jobs.map((j) => [j.path, j])), approvals };
}

const failures = (job: JobRecord) =>
  job.steps.filter((s) => s.conclusion === 'failure').map((s) => `${s.id}: ${s.error ?? s.log.slice(-600)}`);

const liveImage = () =>
  (
    sim.peek('Deployment', 'shop-production', 'shop') as
      | { spec?: { template?: { spec?: { containers?: { image?: string }[] } } } }
      | undefined
  )?.spec?.template?.spec?.containers?.[0]?.image;
const slackText = () => JSON.stringify(slack.messages);
const blockedDeployments = () =>
  github.deployments.filter((d) => (d.payload as { blocked?: unknown }).blocked !== undefined);

describe('deploy.yml with deploy windows and freezes', () => {
  test('inside a deny window: blocked before the approval, nothing deployed, told in Slack and GitHub', async () => {
    const before = blockedDeployments().length;
    const { run, jobs, approvals } = await play({ now: FRIDAY_AFTERNOON });
    expect(run.conclusion).toBe('success');
    expect(jobs['production/gate']!.conclusion).toBe('success');
    expect(jobs['production/deploy']!.conclusion).toBe('skipped');
    expect(approvals).toBe(0);
    expect(run.outputs).toBeDefined();
    expect(jobs.production!.outputs).toMatchObject({
      ended: 'blocked',
      environment: 'production',
      reason:
        'production: blocked by window: closed (deny Fri 12:00 - Mon 08:00); next window opens Mon 08:00 CET',
    });
    expect(liveImage()).toBeUndefined();
    expect(slackText()).toContain('Not deployed, blocked by window (nothing was changed)');
    expect(slackText()).toContain('next window opens Mon 08:00 CET');
    const recorded = blockedDeployments().slice(before);
    expect(recorded).toHaveLength(1);
    expect(recorded[0]!.statuses.at(-1)).toMatchObject({ state: 'inactive' });
    expect(recorded[0]!.statuses.at(-1)!.description).toMatch(/^production: blocked by window/);
  }, 120_000);

  test('the window closes while the approval waits: the approved deploy is blocked before its first change', async () => {
    const { jobs, approvals } = await play({
      now: FRIDAY_BEFORE_NOON,
      whileWaiting: (env) => {
        env.PIPELINE_NOW = FRIDAY_AFTERNOON;
      },
    });
    expect(approvals).toBe(1);
    const deploy = jobs['production/deploy']!;
    expect(deploy.conclusion).toBe('success');
    expect(deploy.outputs).toMatchObject({ ended: 'blocked' });
    const step = (id: string) => deploy.steps.find((s) => s.id === id)!;
    expect(step('window').outputs.blocked).toBe('true');
    expect(step('rolling').conclusion).toBe('skipped');
    expect(step('succeeded').conclusion).toBe('skipped');
    expect(liveImage()).toBeUndefined();
    expect(jobs.production!.outputs.ended).toBe('blocked');
  }, 120_000);

  test('a freeze set while the approval waits blocks the approved deploy, naming who, when and why', async () => {
    const { jobs } = await play({
      now: THURSDAY,
      whileWaiting: (_env, vars) => {
        vars.PIPELINE_FREEZE = FREEZE;
      },
    });
    expect(jobs['production/deploy']!.outputs).toMatchObject({
      ended: 'blocked',
      reason: 'production: blocked by freeze: frozen by alice since 2026-12-01T09:00:00Z: incident 4711',
    });
    expect(liveImage()).toBeUndefined();
    expect(slackText()).toContain('blocked by freeze');
    expect(slackText()).toContain('frozen by alice');
  }, 120_000);

  test('break glass by someone not listed is refused and the deploy stays blocked', async () => {
    const { jobs } = await play({
      now: THURSDAY,
      vars: { PIPELINE_FREEZE: FREEZE },
      inputs: { 'break-glass': 'payments are down, hotfix 1.2.4', 'break-glass-allowed': '@acme/sre' },
      actor: 'mallory',
    });
    expect(jobs['production/deploy']!.conclusion).toBe('skipped');
    expect(jobs.production!.outputs.reason).toContain(
      'break glass refused: mallory is not among those allowed',
    );
    expect(liveImage()).toBeUndefined();
  }, 120_000);

  test('break glass by a member of a listed team deploys through the freeze, and says so', async () => {
    const { jobs } = await play({
      now: THURSDAY,
      vars: { PIPELINE_FREEZE: FREEZE },
      inputs: { 'break-glass': 'payments are down, hotfix 1.2.4', 'break-glass-allowed': '@acme/sre' },
      actor: 'carol',
    });
    const deploy = jobs['production/deploy']!;
    expect([
      deploy.conclusion,
      deploy.steps
        .filter((s) => s.conclusion === 'failure')
        .map((s) => `${s.id}: ${s.error ?? ''} ${s.log.slice(-800)}`),
    ]).toEqual(['success', []]);
    expect(deploy.outputs.ended).toBe('succeeded');
    expect(deploy.outputs.gate).toMatch(
      /^production: BREAK GLASS by carol \(member of @acme\/sre\): payments are down, hotfix 1\.2\.4/,
    );
    expect(liveImage()).toBe(IMAGE);
    expect(slackText()).toContain('BREAK GLASS by carol');
    expect(deploy.steps.find((s) => s.id === 'window')!.summary).toContain('granted to carol');
    // The release and its break glass are in the GitHub deployment, for the record and for rollback.yml.
    const release = github.deployments.find(
      (d) => String(d.id) === deploy.steps.find((s) => s.id === 'rolling')!.outputs['deployment-id'],
    );
    expect(release!.payload).toMatchObject({
      app: 'shop',
      images: { 'ghcr.io/acme/shop': IMAGE },
      configHash: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
      revision: 'c'.repeat(40),
      strategy: 'rolling',
      migrationsVersion: '',
      breakGlass: {
        actor: 'carol',
        reason: 'payments are down, hotfix 1.2.4',
        because: 'member of @acme/sre',
        overrode: ['freeze'],
      },
    });
    expect(release!.statuses.at(-1)!.state).toBe('success');
  }, 180_000);

  test('a canary release records the same images key and configHash as a rolling one of the overlay', async () => {
    const recorded = (p: Played, step: string) =>
      github.deployments.find(
        (d) =>
          String(d.id) ===
          p.jobs['production/deploy']!.steps.find((s) => s.id === step)!.outputs['deployment-id'],
      )!;
    const canary = await play({
      now: THURSDAY,
      inputs: {
        strategy: 'canary',
        image: NEXT,
        'canary-steps': '50,100',
        'canary-checks': '- { name: canary health, service: shop-canary:80, path: /health }',
      },
    });
    expect(failures(canary.jobs['production/deploy']!)).toEqual([]);
    const rolling = await play({ now: THURSDAY, inputs: { image: IMAGE } });
    const c = recorded(canary, 'record').payload as Record<string, unknown>;
    const r = recorded(rolling, 'rolling').payload as Record<string, unknown>;
    expect(c).toMatchObject({ images: { 'ghcr.io/acme/shop': NEXT }, strategy: 'canary' });
    expect(Object.keys(c.images as object)).toEqual(Object.keys(r.images as object));
    // Images are left out of the hash: the same overlay, whichever image, hashes the same.
    expect(c.configHash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(c.configHash).toBe(r.configHash);
    // The plan that computes it writes nothing to the job's summary.
    expect(canary.jobs['production/deploy']!.steps.find((s) => s.id === 'config')!.summary ?? '').toBe('');
  }, 240_000);

  test('wait-for-window: a deploy blocked a few minutes before its window waits, then asks for the approval and deploys', async () => {
    const { jobs, approvals } = await play({
      // Monday 07:57 CET: the weekend's deny range ends at 08:00.
      now: '2026-12-07T06:57:00Z',
      inputs: { 'wait-for-window': '10m', image: NEXT },
      // Each step's clock starts at PIPELINE_NOW: the test moves it past the wait for the deploy job.
      whileWaiting: (env) => {
        env.PIPELINE_NOW = '2026-12-07T07:01:00Z';
      },
    });
    expect(jobs['production/gate']!.outputs.blocked).toBe('false');
    expect(jobs['production/gate']!.steps.find((s) => s.id === 'gate')!.log).toContain(
      'next window opens Mon 08:00 CET; waiting',
    );
    expect(approvals).toBe(1);
    expect(jobs['production/deploy']!.outputs.ended).toBe('succeeded');
    expect(liveImage()).toBe(NEXT);
  }, 180_000);
});
