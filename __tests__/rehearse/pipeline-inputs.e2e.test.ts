import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { POSTGRES_INSTALL_HINT, postgresAvailable } from '../../tooling/local-services/postgres.ts';
import { type RehearseResult, rehearse } from '../../tooling/rehearse/rehearse.ts';
import { REPO_ROOT } from '../../tooling/runners/action-runner.ts';

/**
 * pipeline.yml's first job checks every environment's inputs: a bad production input must fail
 * the run before dev or staging deploys, and be told as invalid inputs, never as a rejection.
 * Each case is examples/shop's caller with one input changed, played through the real workflows.
 */

const out = mkdtempSync(join(tmpdir(), 'pipeline-inputs-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

if (!postgresAvailable() && process.env.CI === 'true') throw new Error(POSTGRES_INSTALL_HINT);
const describeWithPostgres = postgresAvailable() ? describe : describe.skip;

/** examples/shop with its caller's `from` line replaced by `to`. */
function variant(name: string, from: string, to: string): string {
  const dir = join(out, name);
  cpSync(join(REPO_ROOT, 'examples', 'shop'), dir, { recursive: true });
  const caller = join(dir, '.github', 'workflows', 'release.yml');
  const text = readFileSync(caller, 'utf8');
  expect(text).toContain(from);
  writeFileSync(caller, text.replace(from, to));
  return dir;
}

// The caller's image line, a GitHub expression (not a template string).
const IMAGE_LINE = ['image: $', '{{ needs.build.outputs.image }}'].join('');

async function play(name: string, from: string, to: string): Promise<RehearseResult> {
  return rehearse({
    scenario: 'first-release',
    timeScale: 200,
    reportPath: join(out, `${name}.md`),
    example: variant(name, from, to),
    approve: async () => true,
  });
}

function expectRefusedBeforeAnyChange(r: RehearseResult, error: string): void {
  // Nothing reached any cluster: no Deployment, no image, in any environment.
  for (const s of r.state) {
    expect([s.environment, s.image, s.deployment]).toEqual([s.environment, undefined, undefined]);
    expect(s.migrations).toEqual([]);
  }
  for (const { run } of r.runs) {
    const plan = run.jobs.find((j) => j.path === 'pipeline/plan')!;
    expect(plan.conclusion).toBe('failure');
    const check = plan.steps.find((s) => s.id === 'check')!;
    expect(`${check.error}\n${check.log}`).toContain(`::error title=invalid input::${error}`);
    expect(run.jobs.filter((j) => /\/(dev|staging|production)\/deploy$/.test(j.path))).toEqual([]);
    expect(run.jobs.find((j) => j.path === 'pipeline')!.outputs.ended).toBe('failed');
  }
  const living = r.slack.filter((m) => !m.threadTs);
  expect(living.length).toBeGreaterThan(0);
  for (const m of living) {
    const text = JSON.stringify(m.blocks);
    expect(text).toContain("The pipeline's inputs are invalid");
    expect(text).not.toMatch(/reject/i);
  }
}

describeWithPostgres('pipeline.yml checks every input of every environment before any deploy', () => {
  test('a malformed production-soak fails the first job: nothing deploys, Slack says invalid inputs', async () => {
    const r = await play('soak', 'production-soak: 15m', 'production-soak: 15 min');
    expectRefusedBeforeAnyChange(r, "production-soak is '15 min'");
  }, 300_000);

  test('a canary step with a malformed pause fails the first job', async () => {
    const r = await play('steps', 'canary-steps: "10:2m,50:5m,100"', 'canary-steps: "10:2mins,50:5m,100"');
    expectRefusedBeforeAnyChange(r, "canary-steps has the pause '2mins'");
  }, 300_000);

  test('an image without a digest is refused unless allow-tag-image is set', async () => {
    const r = await play('tag', IMAGE_LINE, 'image: ghcr.io/acme/shop:latest');
    expectRefusedBeforeAnyChange(r, "image is 'ghcr.io/acme/shop:latest', which has no digest");
  }, 300_000);

  test('a soak longer than a GitHub-hosted job can live fails the first job, naming the 6h limit', async () => {
    const r = await play('hosted', 'production-soak: 15m', 'production-soak: 5h40m');
    expectRefusedBeforeAnyChange(
      r,
      "production-soak is '5h40m': with the canary pauses and the rollout deadline the production deploy job would need 382 minutes, and a GitHub-hosted runner (ubuntu-latest) ends a job after 6h (at most 360 minutes)",
    );
  }, 300_000);

  test('allow-tag-image: true lets a tag through the first job', async () => {
    const r = await play(
      'tag-allowed',
      IMAGE_LINE,
      'image: ghcr.io/acme/shop:latest\n      allow-tag-image: true',
    );
    for (const { run } of r.runs)
      expect(run.jobs.find((j) => j.path === 'pipeline/plan')!.conclusion).toBe('success');
    // The feature run gets past the check and deploys the tag to dev (the simulated app it names
    // is not the example's, so its health gate fails afterwards: not what this test is about).
    const dev = r.runs[0]!.run.jobs.find((j) => j.path === 'pipeline/dev/deploy')!;
    expect(dev.steps.find((s) => s.id === 'rolling')).toMatchObject({
      conclusion: 'success',
      outputs: expect.objectContaining({ image: 'ghcr.io/acme/shop:latest' }),
    });
  }, 300_000);
});
