import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { POSTGRES_INSTALL_HINT, postgresAvailable } from '../../tooling/local-services/postgres.ts';
import { rehearse } from '../../tooling/rehearse/rehearse.ts';

/**
 * The rollback scenario through the real workflows: the previous release and the new one go
 * through pipeline.yml (the new one with migration 3), then examples/shop's rollback.yml, run by
 * hand (workflow_dispatch), returns production to the previous release.
 */

const out = mkdtempSync(join(tmpdir(), 'rehearse-rollback-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));
if (!postgresAvailable() && process.env.CI === 'true') throw new Error(POSTGRES_INSTALL_HINT);
const describeWithPostgres = postgresAvailable() ? describe : describe.skip;

describeWithPostgres('pipeline rehearse: release control', () => {
  test('frozen: production blocked with who/when/why, in the plan, Slack and GitHub; no approval asked, nothing changed', async () => {
    const approvals: string[] = [];
    const r = await rehearse({
      scenario: 'frozen',
      strategy: 'canary',
      timeScale: 120,
      reportPath: join(out, 'frozen.md'),
      approve: async (env) => {
        approvals.push(env);
        return true;
      },
    });
    expect(r.mismatches).toEqual([]);
    expect(approvals).toEqual([]);
    expect(r.state.find((s) => s.environment === 'production')!.image).toBe(r.images.previous);
    const run = r.runs.at(-1)!.run;
    const line =
      'production: blocked by freeze: frozen by alice since 2026-01-01T00:00:00Z: payments provider migration tonight';
    expect(run.jobs.find((j) => j.path === 'pipeline/production-plan')!.outputs.gate).toBe(line);
    expect(run.jobs.find((j) => j.path === 'pipeline')!.outputs).toMatchObject({
      ended: 'blocked',
      environment: 'production',
    });
    expect(run.jobs.find((j) => j.path === 'pipeline/production/deploy')!.conclusion).toBe('skipped');
    const living = r.slack.find((m) => !m.threadTs && m.text.includes(r.images.main))!;
    expect(living.text).toContain(line);
    expect(JSON.stringify(living.blocks)).toContain('⏭️ production');
    const blocked = r.deployments.filter((d) => (d.payload as { blocked?: unknown }).blocked);
    expect(blocked.map((d) => [d.environment, d.statuses.map((s) => s.state).join('>')])).toEqual([
      ['production', 'inactive'],
    ]);
  }, 400_000);

  test('production returns to the previous release: its image, migration 3 reverted, recorded, told and pinned', async () => {
    const r = await rehearse({
      scenario: 'rollback',
      strategy: 'canary',
      timeScale: 120,
      reportPath: join(out, 'rollback.md'),
      approve: async () => true,
    });
    expect(r.mismatches).toEqual([]);
    const production = r.state.find((s) => s.environment === 'production')!;
    expect(production.image).toBe(r.images.previous);
    expect(production.migrations).not.toContain('3');
    expect(r.state.find((s) => s.environment === 'staging')!.image).toBe(r.images.main);

    const rollback = r.runs.at(-1)!.run.jobs.find((j) => j.path === 'rollback/rollback')!;
    const step = (id: string) => rollback.steps.find((s) => s.id === id)!;
    expect(step('target').outputs).toMatchObject({
      image: r.images.previous,
      'migrations-version': '2',
      'down-to': '2',
      strategy: 'canary',
    });
    expect(step('down').outputs.reverted).toContain('3');
    expect(rollback.outputs).toMatchObject({
      image: r.images.previous,
      pinned: 'true',
      ended: 'rolled-back',
    });

    // The releases as GitHub recorded them: previous and new by deploy.yml, then the return.
    const releases = r.deployments.filter(
      (d) => d.environment === 'production' && (d.payload as { images?: unknown }).images,
    );
    expect(releases.map((d) => (d.payload as { migrationsVersion?: string }).migrationsVersion)).toEqual([
      '2',
      '3',
      '2',
    ]);
    expect(releases.at(-1)!.payload).toMatchObject({
      strategy: 'rolling',
      rollback: { to: releases[0]!.id, reason: 'checkout errors since the release' },
    });
    expect(releases.at(-1)!.statuses.at(-1)!.state).toBe('success');

    const slack = JSON.stringify(r.slack).replace(/\u200b/g, '');
    expect(slack).toContain(`Returned to deployment ${releases[0]!.id}`);
    expect(slack).toContain(
      'deploys are blocked until the PIPELINE_PIN variable of the production environment is deleted',
    );
  }, 400_000);
});
