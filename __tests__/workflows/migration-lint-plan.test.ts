import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@jest/globals';
import { parse, stringify } from 'yaml';
import { REPO_ROOT } from '../../tooling/runners/action-runner.ts';
import { type JobRecord, WorkflowRunner } from '../../tooling/runners/workflow-runner.ts';
import { mainPush, usePostgres, useWorkflowWorkspace } from '../../tooling/test-support/fixtures.ts';

/**
 * The migration lint as the pipeline's own steps report it, run through the workflow runner on
 * PostgreSQL: the production plan job's `migrations` and `digest` steps (copied from pipeline.yml
 * as they are) say what production will do with unacknowledged findings, and deploy.yml's
 * `migrations plan` and `migrations up` steps of one job warn about a finding once, not twice.
 */

const IMAGE = `ghcr.io/acme/shop@sha256:${'1'.repeat(64)}`;
const pg = usePostgres();
const workspace = useWorkflowWorkspace('migration-lint-wf-');

type Step = Record<string, unknown>;
const expression = (e: string) => `\${{ ${e} }}`;
const stepsOf = (workflow: string, job: string, ids: string[]): Step[] => {
  const doc = parse(readFileSync(join(REPO_ROOT, '.github', 'workflows', workflow), 'utf8'));
  const steps = doc.jobs[job].steps as Step[];
  return ids.map((id) => {
    const step = steps.find((s) => s.id === id);
    if (!step) throw new Error(`${workflow} has no step ${id} in ${job}`);
    return step;
  });
};

/** The steps in a reusable workflow of the workspace with the inputs they read, called with `with`. */
async function runSteps(
  steps: Step[],
  inputs: Record<string, string>,
  databaseUrl: string,
): Promise<JobRecord> {
  const dir = join(workspace, '.github', 'workflows');
  writeFileSync(
    join(dir, 'steps.yml'),
    stringify({
      on: {
        workflow_call: {
          inputs: Object.fromEntries(Object.keys(inputs).map((k) => [k, { type: 'string', default: '' }])),
        },
      },
      jobs: { job: { 'runs-on': 'ubuntu-latest', steps } },
    }),
  );
  writeFileSync(
    join(dir, 'caller.yml'),
    stringify({
      on: 'push',
      jobs: { call: { uses: './.github/workflows/steps.yml', with: inputs, secrets: 'inherit' } },
    }),
  );
  const runner = new WorkflowRunner({
    repoRoot: REPO_ROOT,
    workspace,
    event: mainPush(),
    secrets: { DATABASE_URL: databaseUrl },
    vars: {},
    env: {},
    githubApiUrl: 'http://127.0.0.1:9',
    token: 'ghs_x',
    requiresApproval: () => false,
    approve: async () => true,
  });
  const run = await runner.runWorkflow(join(dir, 'caller.yml'));
  return run.jobs.find((j) => j.path.endsWith('/job'))!;
}

/** Five findings in one migration (drop-column at line 7 and four others); `allows` acknowledges some. */
function writeMigrations(name: string, allows: string[]): string {
  const dir = join(workspace, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, '001_orders.sql'),
    '-- migrate:up\nCREATE TABLE orders (id int, note text, total int);\n',
  );
  writeFileSync(
    join(dir, '002_cleanup.sql'),
    [
      ...allows,
      '-- migrate:up',
      `SET lock_timeout = '5s';`,
      'ALTER TABLE orders DROP COLUMN note;',
      'TRUNCATE orders;',
      'DELETE FROM orders;',
      'UPDATE orders SET total = 0;',
      'ALTER TABLE orders ALTER COLUMN total TYPE bigint;',
      '',
    ].join('\n'),
  );
  return name;
}

async function databaseAt001(dir: string): Promise<string> {
  const url = await pg.server.createDatabase('lint_plan');
  const applied = await runSteps(
    [
      {
        uses: 'acme/pipeline/run-migrations@main',
        with: {
          command: 'up',
          dir: expression('inputs.migrations-dir'),
          'database-url': expression('secrets.DATABASE_URL'),
          target: '1',
        },
      },
    ],
    { 'migrations-dir': dir },
    url,
  );
  expect(applied.conclusion).toBe('success');
  return url;
}

const PLAN_STEPS = () => stepsOf('pipeline.yml', 'production-plan', ['migrations', 'digest']);
const planInputs = (dir: string) => ({ app: 'shop', image: IMAGE, 'migrations-dir': dir });
const notice = (job: JobRecord) => job.steps.flatMap((s) => s.annotations).find((a) => a.level === 'notice')!;

pg.suite('the production plan says what production will do with lint findings', () => {
  test('four of five acknowledged (in the header above -- migrate:up): production will refuse the fifth, and the digest says so', async () => {
    const dir = writeMigrations('refused', [
      '-- pipeline:allow truncate the table is a cache',
      '-- pipeline:allow delete-without-where the table is a cache',
      '-- pipeline:allow update-without-where the table is a cache',
      '-- pipeline:allow alter-column-type the table is a cache',
    ]);
    const job = await runSteps(PLAN_STEPS(), planInputs(dir), await databaseAt001(dir));
    const [migrations, digest] = job.steps;
    // The same mode production's own plan and up run with: it refuses, so this plan does not pass.
    expect(migrations!.outcome).toBe('failure');
    const line =
      'production will refuse: 1 unacknowledged lint finding(s) (drop-column at 002_cleanup.sql:7)';
    expect(digest!.outputs.line).toContain(`1 migration(s) to run (2); ${line}`);
    expect(digest!.outputs.line).not.toMatch(/5 lint finding|plan failed/);
    expect(notice(job).message).toContain(line);
    expect(notice(job).message).toContain('truncate at 002_cleanup.sql:8 (acknowledged)');
    expect(migrations!.summary.replace(/\\(.)/g, '$1')).toContain(line);
  });

  test('all five acknowledged: nothing for production to refuse, the acknowledged ones counted apart', async () => {
    const dir = writeMigrations('acknowledged', [
      '-- pipeline:allow drop-column no release reads it',
      '-- pipeline:allow truncate the table is a cache',
      '-- pipeline:allow delete-without-where the table is a cache',
      '-- pipeline:allow update-without-where the table is a cache',
      '-- pipeline:allow alter-column-type the table is a cache',
    ]);
    const job = await runSteps(PLAN_STEPS(), planInputs(dir), await databaseAt001(dir));
    expect(job.steps[0]!.outcome).toBe('success');
    expect(job.steps[1]!.outputs.line).toContain(
      '1 migration(s) to run (2), 0 unacknowledged lint finding(s) (5 acknowledged)',
    );
    expect(job.steps[0]!.summary).not.toContain('will refuse');
  });
});

pg.suite("deploy.yml's migrations steps warn about a lint finding once per job", () => {
  test('plan and up of one staging job: one warning annotation, the repeat in the log only; the migration applied', async () => {
    const dir = writeMigrations('staging', ['-- pipeline:allow drop-colum a typo acknowledges nothing']);
    const url = await databaseAt001(dir);
    const inputs = { environment: 'staging', 'migrations-dir': dir };
    const job = await runSteps(stepsOf('deploy.yml', 'deploy', ['plan', 'migrate']), inputs, url);
    const [plan, up] = job.steps;
    expect([plan!.outcome, up!.outcome]).toEqual(['success', 'success']);
    expect(up!.outputs.applied).toBe('2');
    const warnings = job.steps.flatMap((s) => s.annotations).filter((a) => a.level === 'warning');
    // The findings once and the malformed allow line once, both from the plan step.
    expect(warnings.map((w) => w.message.split('\n')[0])).toEqual([
      expect.stringMatching(/^002_cleanup\.sql:1: -- pipeline:allow names the rule "drop-colum"/),
      'Migration safety lint:',
    ]);
    expect(plan!.annotations).toHaveLength(2);
    expect(up!.annotations).toEqual([]);
    expect(up!.log).toContain(
      'Warned by an earlier step of this job, not repeated as an annotation: Migration safety lint:',
    );

    // Another job warns afresh: the memory is the job's environment, not the run's.
    const again = await runSteps(stepsOf('deploy.yml', 'deploy', ['plan']), inputs, await databaseAt001(dir));
    expect(again.steps[0]!.annotations.filter((a) => a.level === 'warning')).toHaveLength(2);
  });
});
