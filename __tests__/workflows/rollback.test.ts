import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { LocalGitHub } from '../../tooling/local-services/local-github.ts';
import { LocalSlack } from '../../tooling/local-services/local-slack.ts';
import { REPO_ROOT } from '../../tooling/runners/action-runner.ts';
import { type JobRecord, type WorkflowRun, WorkflowRunner } from '../../tooling/runners/workflow-runner.ts';
import {
  mainPush,
  useKubeSim,
  usePostgres,
  useServer,
  useWorkflowWorkspace,
  writeCaller,
} from '../../tooling/test-support/fixtures.ts';

/**
 * rollback.yml through the local workflow runner: two releases go out through deploy.yml (the
 * second with a new migration), then the return to the first is refused while the schema is past
 * it, done with down migrations when asked for (the cluster runs the first image and its
 * configuration again, the database is back at its version), recorded in GitHub, told in Slack,
 * and the environment is pinned: the next release is blocked until the pin is deleted.
 */

const IMAGE = (d: string) => `ghcr.io/acme/shop@sha256:${d.repeat(64)}`;
const SHA = (d: string) => d.repeat(40);

const sim = useKubeSim({
  timeScale: 50,
  namespaces: ['shop-production'],
  images: [{ pattern: /ghcr\.io\/acme\/shop@/, http: { health: { status: 'healthy' } } }],
});
const github = useServer('LocalGitHub', () => LocalGitHub.start({ tokens: ['ghs_rb'] }));
const slack = useServer('LocalSlack', () =>
  LocalSlack.start({ tokens: ['xoxb-rb'], channels: { deploys: 'C0DEPLOYS' } }),
);
const { server: postgres } = usePostgres();
const workspace = useWorkflowWorkspace('rollback-wf-', { exampleK8s: true });
let databaseUrl: string;

beforeAll(async () => {
  github.seedEnvironment({ owner: 'acme', repo: 'shop', name: 'production' });
  const admin = new pg.Client({ connectionString: postgres.url });
  await admin.connect();
  await admin.query('CREATE DATABASE shop_production');
  await admin.end();
  databaseUrl = postgres.urlFor('shop_production');
  mkdirSync(join(workspace, 'migrations'));
  writeFileSync(
    join(workspace, 'migrations', '001_products.sql'),
    '-- migrate:up\nCREATE TABLE products (id bigint PRIMARY KEY);\n-- migrate:down\nDROP TABLE products;\n',
  );
});

async function play(
  workflow: 'deploy.yml' | 'rollback.yml',
  inputs: Record<string, string | boolean>,
  sha: string,
  vars: Record<string, string> = {},
  secrets: Record<string, string> = {},
): Promise<{ run: WorkflowRun; jobs: Record<string, JobRecord> }> {
  const file = writeCaller(
    workspace,
    { environment: 'production', app: 'shop', 'slack-channel': 'deploys', ...inputs },
    workflow,
  );
  const runner = new WorkflowRunner({
    repoRoot: REPO_ROOT,
    workspace,
    event: mainPush({ sha, actor: 'dave' }),
    secrets: {
      SLACK_BOT_TOKEN: 'xoxb-rb',
      KUBECONFIG: sim.kubeconfig,
      DATABASE_URL: databaseUrl,
      ...secrets,
    },
    vars: { PIPELINE_SLACK_API_URL: slack.apiUrl, ...vars },
    env: { PIPELINE_TIME_SCALE: '50', GITHUB_API_URL: github.url, PIPELINE_NOW: '2026-12-03T10:00:00Z' },
    githubApiUrl: github.url,
    token: 'ghs_rb',
    requiresApproval: () => false,
    approve: async () => true,
  });
  const run = await runner.runWorkflow(file);
  return { run, jobs: Object.fromEntries(run.jobs.map((j) => [j.path, j])) };
}

const live = () => {
  const d = sim.peek('Deployment', 'shop-production', 'shop') as
    | { spec: { template: { spec: { containers: { image: string }[] } } } }
    | undefined;
  return d?.spec.template.spec.containers[0]?.image;
};
async function appliedVersions(): Promise<string[]> {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    const tables = await c.query(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    );
    return tables.rows.map((r: { table_name: string }) => r.table_name);
  } finally {
    await c.end();
  }
}
const failures = (job: JobRecord) =>
  job.steps.filter((s) => s.conclusion === 'failure').map((s) => `${s.id}: ${s.error ?? s.log.slice(-600)}`);

describe('rollback.yml: one step back to a known-good release', () => {
  let first: number;
  let pin = '';

  test('two releases go out through deploy.yml, each recorded with what a return needs', async () => {
    const a = await play('deploy.yml', { image: IMAGE('a'), 'migrations-dir': 'migrations' }, SHA('a'));
    expect(failures(a.jobs['production/deploy']!)).toEqual([]);
    writeFileSync(
      join(workspace, 'migrations', '002_orders.sql'),
      '-- migrate:up\nCREATE TABLE orders (id bigint PRIMARY KEY);\n-- migrate:down\nDROP TABLE orders;\n',
    );
    const b = await play('deploy.yml', { image: IMAGE('b'), 'migrations-dir': 'migrations' }, SHA('b'));
    expect(failures(b.jobs['production/deploy']!)).toEqual([]);
    expect(live()).toBe(IMAGE('b'));
    const releases = github.deployments.filter((d) => (d.payload as { images?: unknown }).images);
    expect(releases.map((d) => (d.payload as { migrationsVersion: string }).migrationsVersion)).toEqual([
      '1',
      '2',
    ]);
    first = releases[0]!.id;
    expect(await appliedVersions()).toEqual(expect.arrayContaining(['orders', 'products']));
  }, 300_000);

  test('refused while the schema is past what that release knew: nothing changes', async () => {
    const before = github.deployments.length;
    const { jobs } = await play(
      'rollback.yml',
      { reason: 'checkout errors since 1.5.0', 'migrations-dir': 'migrations' },
      SHA('b'),
    );
    const job = jobs['production/rollback']!;
    expect(job.conclusion).toBe('failure');
    expect(failures(job).join('\n')).toContain(
      'the database schema is at 2, past 1 that the release knew; set down-migrations',
    );
    expect(job.steps.find((s) => s.id === 'deploy')!.conclusion).toBe('skipped');
    expect(live()).toBe(IMAGE('b'));
    expect(await appliedVersions()).toContain('orders');
    expect(github.deployments.length).toBe(before);
    expect(github.environments.find((e) => e.name === 'production')!.variables).toEqual([]);
  }, 300_000);

  test('with down migrations: the database goes back, the first release runs again, recorded, told and pinned', async () => {
    const { jobs } = await play(
      'rollback.yml',
      { reason: 'checkout errors since 1.5.0', 'migrations-dir': 'migrations', 'down-migrations': true },
      SHA('b'),
    );
    const job = jobs['production/rollback']!;
    expect(failures(job)).toEqual([]);
    expect(job.outputs).toMatchObject({
      'deployment-id': String(first),
      image: IMAGE('a'),
      revision: SHA('a'),
      pinned: 'true',
    });
    expect(live()).toBe(IMAGE('a'));
    const tables = await appliedVersions();
    expect(tables).toContain('products');
    expect(tables).not.toContain('orders');
    expect(job.steps.find((s) => s.name === 'configuration check')!.log).toContain(
      `The configuration is the one deployment ${first} ran`,
    );
    const returned = github.deployments.at(-1)!;
    expect(returned.payload).toMatchObject({
      images: { 'ghcr.io/acme/shop': IMAGE('a') },
      strategy: 'rolling',
      rollback: { to: first, reason: 'checkout errors since 1.5.0', by: 'dave' },
    });
    expect(returned.statuses.at(-1)!.state).toBe('success');
    const variables = github.environments.find((e) => e.name === 'production')!.variables;
    expect(variables.map((v) => v.name)).toEqual(['PIPELINE_PIN']);
    pin = variables[0]!.value;
    expect(JSON.parse(pin)).toMatchObject({ environments: ['production'], by: 'dave' });
    const text = JSON.stringify(slack.messages);
    expect(text).toContain(`Returned to deployment ${first}`);
    // Slack's escaping puts a zero-width space before the underscore, so it is not read as italics.
    expect(text.replace(/\u200b/g, '')).toContain(
      'deploys are blocked until the PIPELINE_PIN variable of the production environment is deleted',
    );
  }, 300_000);

  test('the pin blocks the next release until it is deleted', async () => {
    const { jobs } = await play('deploy.yml', { image: IMAGE('c') }, SHA('c'), { PIPELINE_PIN: pin });
    expect(jobs['production/deploy']!.outputs).toMatchObject({ ended: 'blocked' });
    expect(jobs['production/deploy']!.outputs.reason).toMatch(
      /^production: blocked by freeze: frozen by dave since .*: returned to deployment/,
    );
    expect(live()).toBe(IMAGE('a'));
    const lifted = await play('deploy.yml', { image: IMAGE('c') }, SHA('c'));
    expect(lifted.jobs['production/deploy']!.outputs.ended).toBe('succeeded');
    expect(live()).toBe(IMAGE('c'));
  }, 300_000);

  test('with PIPELINE_VARIABLES_TOKEN the pin is seen before the approval, where vars.PIPELINE_PIN is empty', async () => {
    // The pin is still on the environment: the previous test lifted it only from the deploy job's vars.
    const env = github.environments.find((e) => e.name === 'production')!;
    expect(env.variables.map((v) => v.name)).toContain('PIPELINE_PIN');
    const tokens = { PIPELINE_VARIABLES_TOKEN: 'ghs_rb' };
    const blocked = await play('deploy.yml', { image: IMAGE('d') }, SHA('d'), {}, tokens);
    expect(blocked.jobs['production/gate']!.outputs).toMatchObject({ blocked: 'true' });
    expect(blocked.jobs['production/gate']!.outputs.reason).toMatch(/blocked by freeze: frozen by dave/);
    expect(blocked.jobs['production/deploy']!.conclusion).toBe('skipped');
    expect(live()).toBe(IMAGE('c'));
    // Deleting the variable (Settings → Environments → production) clears it.
    env.variables.splice(
      env.variables.findIndex((v) => v.name === 'PIPELINE_PIN'),
      1,
    );
    const cleared = await play('deploy.yml', { image: IMAGE('d') }, SHA('d'), {}, tokens);
    expect(cleared.jobs['production/gate']!.outputs.blocked).toBe('false');
    expect(cleared.jobs['production/deploy']!.outputs.ended).toBe('succeeded');
    expect(live()).toBe(IMAGE('d'));
  }, 300_000);
});
