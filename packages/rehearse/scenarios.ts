import { createHash } from 'node:crypto';

/** What each scenario does to the release, and how it is expected to end. */
export const SCENARIOS = ['healthy', 'bad-canary', 'failed-migration', 'crashloop'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface Expectation {
  /** Which build each environment must run at the end: the feature branch's, main's, or the previous release. */
  images: Record<string, 'feature' | 'main' | 'previous'>;
  /** Migration versions that must (or must not) be applied in an environment's database at the end. */
  migrations: { environment: string; version: string; applied: boolean }[];
  /** Whether the main-branch run (staging → production) happens at all. */
  mainRun: boolean;
  /** Jobs (by path suffix) expected to fail. */
  failingJobs: string[];
  summary: string;
}

export const EXPECTATIONS: Record<ScenarioName, Expectation> = {
  healthy: {
    images: { dev: 'feature', staging: 'main', production: 'main' },
    migrations: [
      { environment: 'dev', version: '3', applied: true },
      { environment: 'staging', version: '3', applied: true },
      { environment: 'production', version: '3', applied: true },
    ],
    mainRun: true,
    failingJobs: [],
    summary: 'the release reaches production through dev and staging, with the approval and the canary steps',
  },
  'bad-canary': {
    images: { dev: 'feature', staging: 'main', production: 'previous' },
    migrations: [
      { environment: 'staging', version: '3', applied: true },
      { environment: 'production', version: '3', applied: true },
    ],
    mainRun: true,
    failingJobs: ['production/deploy'],
    summary:
      "the new version's error rate rises under production traffic: the canary aborts and all traffic returns to the stable version",
  },
  'failed-migration': {
    images: { dev: 'previous', staging: 'previous', production: 'previous' },
    migrations: [{ environment: 'dev', version: '4', applied: false }],
    mainRun: false,
    failingJobs: ['dev/deploy'],
    summary:
      'a migration fails in dev: its transaction rolls back, the application is not deployed, and the release stops there',
  },
  crashloop: {
    images: { dev: 'previous', staging: 'previous', production: 'previous' },
    migrations: [{ environment: 'dev', version: '3', applied: true }],
    mainRun: false,
    failingJobs: ['dev/deploy'],
    summary:
      'the new image crashes on start: the deploy fails fast on CrashLoopBackOff and rolls back to the previous version',
  },
};

function digest(seed: string): string {
  return `sha256:${createHash('sha256').update(seed).digest('hex')}`;
}

export const REPOSITORY = 'ghcr.io/acme/shop';
export const PREVIOUS_IMAGE = `${REPOSITORY}@${digest('shop v1.4.0')}`;

/** The digest the example's build job derives when the Docker build is skipped (as in the rehearsal). */
export function imageForCommit(sha: string): string {
  return `${REPOSITORY}@${digest(sha)}`;
}

export const BAD_MIGRATION = `-- migrate:up
-- A migration that fails half-way: the column exists in no table.
ALTER TABLE orders ADD COLUMN priority integer NOT NULL DEFAULT 0;
UPDATE orders SET priority = missing_column + 1;

-- migrate:down
ALTER TABLE orders DROP COLUMN priority;
`;
