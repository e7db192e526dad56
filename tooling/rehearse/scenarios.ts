import { createHash } from 'node:crypto';

/**
 * What each scenario does to the release, and how it is expected to end. Every scenario starts
 * from empty environments: the previous release is itself played through the same workflows
 * first (a first release into nothing, with every strategy), never written into the cluster.
 */
export const SCENARIOS = [
  'first-release',
  'healthy',
  'config-change',
  'bad-canary',
  'failed-soak',
  'failed-migration',
  'crashloop',
  'superseded',
  'unknown-strategy',
  'rollback',
  'frozen',
  'production-lags',
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export const STRATEGIES = ['rolling', 'canary', 'blue-green'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export interface Expectation {
  /** Which build each environment must run at the end; 'none' for nothing deployed. */
  images: Record<string, 'feature' | 'main' | 'previous' | 'none'>;
  /** Migration versions that must (or must not) be applied in an environment's database at the end. */
  migrations: { environment: string; version: string; applied: boolean }[];
  /** Whether the scenario's main-branch run (staging → production) happens at all. */
  mainRun: boolean;
  /** Jobs of the scenario's runs (by path suffix) expected to fail. */
  failingJobs: string[];
  /** How the scenario's last run ends (the pipeline's `ended` output). */
  ended: string;
  summary: string;
}

/** Whether a scenario first plays the previous release through the workflows. */
export const playsPreviousRelease = (s: ScenarioName) => s !== 'first-release' && s !== 'unknown-strategy';

export function expectationFor(scenario: ScenarioName, strategy: Strategy): Expectation {
  const all = (applied: boolean, version = '3') =>
    ['dev', 'staging', 'production'].map((environment) => ({ environment, version, applied }));
  switch (scenario) {
    case 'first-release':
      return {
        images: { dev: 'feature', staging: 'main', production: 'main' },
        migrations: all(true),
        mainRun: true,
        failingJobs: [],
        ended: 'succeeded',
        summary: `the first release goes into empty environments: dev and staging get rolling deploys, production a direct ${strategy} first release`,
      };
    case 'healthy':
      return {
        images: { dev: 'feature', staging: 'main', production: 'main' },
        migrations: all(true),
        mainRun: true,
        failingJobs: [],
        ended: 'succeeded',
        summary: `the release replaces the previous one through dev, staging, the approval and a ${strategy} production deploy`,
      };
    case 'config-change':
      return {
        images: { dev: 'previous', staging: 'previous', production: 'previous' },
        // No feature branch: dev keeps the previous release and its migrations.
        migrations: [
          { environment: 'dev', version: '3', applied: false },
          { environment: 'staging', version: '3', applied: true },
          { environment: 'production', version: '3', applied: true },
        ],
        mainRun: true,
        failingJobs: [],
        ended: 'succeeded',
        summary: `only the production overlay changes (LOG_LEVEL, replicas), with the same image: the ${strategy} deploy rolls the new configuration out`,
      };
    case 'bad-canary':
      return {
        images: { dev: 'feature', staging: 'main', production: 'previous' },
        migrations: all(true),
        mainRun: true,
        failingJobs: ['production/deploy'],
        ended: strategy === 'blue-green' ? 'failed' : 'rolled-back',
        summary:
          strategy === 'blue-green'
            ? 'the new colour fails its checks through the preview Service: the live Service never switches'
            : "the new version's error rate rises under production traffic: the canary aborts and all traffic returns to the stable version",
      };
    case 'failed-soak':
      return {
        images: { dev: 'feature', staging: 'main', production: 'previous' },
        migrations: all(true),
        mainRun: true,
        failingJobs: ['production/deploy'],
        ended: 'rolled-back',
        summary: `the release passes its ${strategy} deploy, then production starts answering 503 during the soak: it is rolled back to the previous release`,
      };
    case 'failed-migration':
      return {
        images: { dev: 'previous', staging: 'previous', production: 'previous' },
        migrations: [{ environment: 'dev', version: '4', applied: false }],
        mainRun: false,
        failingJobs: ['dev/deploy'],
        ended: 'failed',
        summary:
          'a migration fails in dev: its transaction rolls back, the application is not deployed, and the release stops there',
      };
    case 'crashloop':
      return {
        images: { dev: 'previous', staging: 'previous', production: 'previous' },
        migrations: [{ environment: 'dev', version: '3', applied: true }],
        mainRun: false,
        failingJobs: ['dev/deploy'],
        ended: 'rolled-back',
        summary:
          'the new image crashes on start: the deploy fails fast on CrashLoopBackOff and rolls back to the previous version',
      };
    case 'production-lags':
      return {
        images: { dev: 'feature', staging: 'main', production: 'main' },
        migrations: all(true),
        mainRun: true,
        // The first main-branch run's production approval, rejected on purpose.
        failingJobs: ['production/deploy'],
        ended: 'succeeded',
        summary:
          "production's approval is rejected once, so staging keeps migration 3 and production stays at 1,2; the release runs again: staging's plan has nothing pending while production's own plan, before the approval, shows 003 to run",
      };
    case 'frozen':
      return {
        images: { dev: 'feature', staging: 'main', production: 'previous' },
        migrations: [
          { environment: 'dev', version: '3', applied: true },
          { environment: 'staging', version: '3', applied: true },
          { environment: 'production', version: '3', applied: false },
        ],
        mainRun: true,
        failingJobs: [],
        ended: 'blocked',
        summary:
          'production is frozen (PIPELINE_FREEZE, by alice, with a reason): the release goes through dev and staging, the production plan shows the freeze, no one is asked to approve, and production ends as blocked with nothing changed',
      };
    case 'rollback':
      return {
        images: { dev: 'feature', staging: 'main', production: 'previous' },
        migrations: [
          { environment: 'dev', version: '3', applied: true },
          { environment: 'staging', version: '3', applied: true },
          { environment: 'production', version: '3', applied: false },
        ],
        mainRun: true,
        failingJobs: [],
        ended: 'rolled-back',
        summary: `the release reaches production with ${strategy}; then rollback.yml, run by hand, reverts migration 3 (which the previous release did not know), redeploys the previous release's image and configuration without canary steps, and pins production`,
      };
    case 'superseded':
      return {
        images: { dev: 'previous', staging: 'feature', production: 'feature' },
        migrations: [
          { environment: 'dev', version: '3', applied: false },
          { environment: 'staging', version: '3', applied: true },
          { environment: 'production', version: '3', applied: true },
        ],
        mainRun: true,
        failingJobs: ['production/deploy'],
        ended: 'superseded',
        summary:
          'while a release waits for its production approval, a newer merge passes staging and production: approving the older one afterwards changes nothing and ends it as superseded',
      };
    case 'unknown-strategy':
      return {
        images: { dev: 'none', staging: 'none', production: 'none' },
        migrations: all(false, '1'),
        mainRun: false,
        failingJobs: ['pipeline/plan'],
        ended: 'failed',
        summary: "strategy 'bluegreen' (a typo) fails the plan job at once: nothing deploys anywhere",
      };
  }
}

function digest(seed: string): string {
  return `sha256:${createHash('sha256').update(seed).digest('hex')}`;
}

export const REPOSITORY = 'ghcr.io/acme/shop';

/** The digest the example's build job derives when the Docker build is skipped (as in the rehearsal). */
export function imageForCommit(sha: string): string {
  return `${REPOSITORY}@${digest(sha)}`;
}

export const PREVIOUS_SHA = '1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c';
/** The release before this one, built from its own commit and played through the workflows first. */
export const PREVIOUS_IMAGE = imageForCommit(PREVIOUS_SHA);

export const BAD_MIGRATION = `-- migrate:up
-- A migration that fails half-way: the column exists in no table.
ALTER TABLE orders ADD COLUMN priority integer NOT NULL DEFAULT 0;
UPDATE orders SET priority = missing_column + 1;

-- migrate:down
ALTER TABLE orders DROP COLUMN priority;
`;
