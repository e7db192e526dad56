import { createHash } from 'node:crypto';

/**
 * The scenarios as data: what each one does to the release and how it must end. One generic
 * player (rehearse.ts) plays any row. Every scenario starts from empty environments: the previous
 * release is itself played through the same workflows first (a first release into nothing, with
 * every strategy), never written into the cluster or the databases.
 */

export const STRATEGIES = ['rolling', 'canary', 'blue-green'] as const;
export type Strategy = (typeof STRATEGIES)[number];

type Build = 'feature' | 'main' | 'previous' | 'none';
/** A migration by its part in the release: the new one (set aside for the previous release), the failing one, the first. */
type MigrationRef = 'new' | 'bad' | 'first';

/**
 * The runs a scenario makes, in order. `main` and `main-rejected` follow only a green feature run
 * (a release that failed in dev is not merged); `rollback` follows only a green run.
 */
export type RunKind = 'feature' | 'main' | 'main-rejected' | 'main-config' | 'rollback' | 'superseded';

/** What the new build does: healthy, or broken from its first pod or only once it reaches production. */
export type Fault = 'crash' | 'production-crash' | 'production-errors' | 'soak-503';

/** A change to the repository (or its variables) before the scenario's own runs. */
export type Change = 'mistyped-strategy' | 'tag-image' | 'bad-migration' | 'freeze' | 'production-config';

export interface Expectation {
  /** Which build each environment must run at the end; 'none' for nothing deployed. */
  images: Record<string, Build>;
  /** Migration versions that must (or must not) be applied in an environment's database at the end. */
  migrations: { environment: string; version: MigrationRef; applied: boolean }[];
  /** Whether the scenario's main-branch run (staging → production) happens at all. */
  mainRun: boolean;
  /** Jobs of the scenario's runs (by path suffix) expected to fail. */
  failingJobs: string[];
  /** How the scenario's last run ends (the pipeline's `ended` output). */
  ended: string;
  summary: string;
}

export interface Scenario {
  /** Plays the previous release through the workflows first. */
  previous: boolean;
  runs: RunKind[];
  fault?: Fault;
  change?: Change;
  /** Environments whose approval is rejected (the scenario's own runs). */
  rejects?: string[];
  expect(strategy: Strategy): Expectation;
}

const ENVS = ['dev', 'staging', 'production'];
const migrated = (applied: Record<string, boolean>, version: MigrationRef = 'new') =>
  ENVS.filter((e) => e in applied).map((environment) => ({
    environment,
    version,
    applied: applied[environment]!,
  }));
const everywhere = (applied: boolean, version: MigrationRef = 'new') =>
  migrated({ dev: applied, staging: applied, production: applied }, version);
const released = { dev: 'feature', staging: 'main', production: 'main' } as const;
const heldInProduction = { dev: 'feature', staging: 'main', production: 'previous' } as const;
const untouched = { dev: 'previous', staging: 'previous', production: 'previous' } as const;
const nothing = { dev: 'none', staging: 'none', production: 'none' } as const;
/** Dev and staging took the new release (and its migration); production kept the previous one. */
const stoppedBeforeProduction = migrated({ dev: true, staging: true, production: false });
/** Production keeps the previous release, whatever the strategy; its migration ran before the deploy. */
const productionRefused =
  (ended: (s: Strategy) => string, summary: (s: Strategy) => string) =>
  (strategy: Strategy): Expectation => ({
    images: heldInProduction,
    migrations: everywhere(true),
    mainRun: true,
    failingJobs: ['production/deploy'],
    ended: ended(strategy),
    summary: summary(strategy),
  });
/** Refused by the first job of every run: nothing anywhere, not even the first migration. */
const refusedAtOnce = (summary: string) => (): Expectation => ({
  images: nothing,
  migrations: everywhere(false, 'first'),
  mainRun: false,
  failingJobs: ['pipeline/plan'],
  ended: 'failed',
  summary,
});
const succeeded =
  (summary: (s: Strategy) => string) =>
  (strategy: Strategy): Expectation => ({
    images: released,
    migrations: everywhere(true),
    mainRun: true,
    failingJobs: [],
    ended: 'succeeded',
    summary: summary(strategy),
  });

export const SCENARIO_TABLE = {
  'first-release': {
    previous: false,
    runs: ['feature', 'main'],
    expect: succeeded(
      (s) =>
        `the first release goes into empty environments: dev and staging get rolling deploys, production a direct ${s} first release`,
    ),
  },
  healthy: {
    previous: true,
    runs: ['feature', 'main'],
    expect: succeeded(
      (s) =>
        `the release replaces the previous one through dev, staging, the approval and a ${s} production deploy`,
    ),
  },
  'config-change': {
    previous: true,
    runs: ['main-config'],
    change: 'production-config',
    expect: (s) => ({
      images: untouched,
      // No feature branch: dev keeps the previous release and its migrations.
      migrations: migrated({ dev: false, staging: true, production: true }),
      mainRun: true,
      failingJobs: [],
      ended: 'succeeded',
      summary: `only the production overlay changes (LOG_LEVEL, replicas), with the same image: the ${s} deploy rolls the new configuration out`,
    }),
  },
  'bad-canary': {
    previous: true,
    runs: ['feature', 'main'],
    fault: 'production-errors',
    expect: productionRefused(
      (s) => (s === 'blue-green' ? 'failed' : 'rolled-back'),
      (s) =>
        ({
          rolling:
            "the new version's error rate rises under production traffic: the health gate fails and the rollout is undone",
          canary:
            "the new version's error rate rises under production traffic: the canary aborts and all traffic returns to the stable version",
          'blue-green':
            'the new colour fails its checks through the preview Service: the live Service never switches',
        })[s],
    ),
  },
  'failed-soak': {
    previous: true,
    runs: ['feature', 'main'],
    fault: 'soak-503',
    // The release also changes production's overlay (replicas, LOG_LEVEL): the rollback must bring
    // back the previous template, configuration and replicas together.
    change: 'production-config',
    expect: productionRefused(
      () => 'rolled-back',
      (s) =>
        `the release (with another production LOG_LEVEL and replicas) passes its ${s} deploy, then production starts answering 503 during the soak: it is rolled back to the previous release, its settings and replicas`,
    ),
  },
  'production-crashloop': {
    previous: true,
    runs: ['feature', 'main'],
    fault: 'production-crash',
    expect: productionRefused(
      (s) => (s === 'blue-green' ? 'failed' : 'rolled-back'),
      (s) =>
        ({
          rolling:
            'the new version crashes on start in production only: the rolling deploy fails fast on CrashLoopBackOff and rolls back',
          canary:
            'the new version crashes on start in production only: the canary fails fast on CrashLoopBackOff and aborts, the stable version keeps the traffic',
          'blue-green':
            'the new version crashes on start in production only: the idle colour never becomes ready and the live Service never switches',
        })[s],
    ),
  },
  rejected: {
    previous: true,
    runs: ['feature', 'main'],
    rejects: ['production'],
    expect: (s) => ({
      images: heldInProduction,
      migrations: stoppedBeforeProduction,
      mainRun: true,
      failingJobs: ['production/deploy'],
      ended: 'rejected',
      summary: `the release passes dev and staging; its production approval (${s}) is rejected: production keeps the previous release and its schema`,
    }),
  },
  'failed-migration': {
    previous: true,
    runs: ['feature', 'main'],
    change: 'bad-migration',
    expect: () => ({
      images: untouched,
      migrations: migrated({ dev: false }, 'bad'),
      mainRun: false,
      failingJobs: ['dev/deploy'],
      ended: 'failed',
      summary:
        'a migration fails in dev: its transaction rolls back, the application is not deployed, and the release stops there',
    }),
  },
  crashloop: {
    previous: true,
    runs: ['feature', 'main'],
    fault: 'crash',
    expect: () => ({
      images: untouched,
      migrations: migrated({ dev: true }),
      mainRun: false,
      failingJobs: ['dev/deploy'],
      ended: 'rolled-back',
      summary:
        'the new image crashes on start: the deploy fails fast on CrashLoopBackOff and rolls back to the previous version',
    }),
  },
  superseded: {
    previous: true,
    runs: ['superseded'],
    expect: () => ({
      images: { dev: 'previous', staging: 'feature', production: 'feature' },
      migrations: migrated({ dev: false, staging: true, production: true }),
      mainRun: true,
      failingJobs: ['production/deploy'],
      ended: 'superseded',
      summary:
        'while a release waits for its production approval, a newer merge passes staging and production: approving the older one afterwards changes nothing and ends it as superseded',
    }),
  },
  'unknown-strategy': {
    previous: false,
    runs: ['feature', 'main'],
    change: 'mistyped-strategy',
    expect: refusedAtOnce(
      "strategy 'bluegreen' (a typo) fails the plan job at once: nothing deploys anywhere",
    ),
  },
  'tag-image': {
    previous: false,
    runs: ['feature', 'main'],
    change: 'tag-image',
    expect: refusedAtOnce(
      'the caller hands the pipeline a tag (…:latest) instead of a digest: the plan job refuses it at once and nothing deploys anywhere',
    ),
  },
  rollback: {
    previous: true,
    runs: ['feature', 'main', 'rollback'],
    expect: (s) => ({
      images: heldInProduction,
      migrations: stoppedBeforeProduction,
      mainRun: true,
      failingJobs: [],
      ended: 'rolled-back',
      summary: `the release reaches production with ${s}; then rollback.yml, run by hand, reverts the new migration (which the previous release did not know), redeploys the previous release's image and configuration without canary steps, and pins production`,
    }),
  },
  frozen: {
    previous: true,
    runs: ['feature', 'main'],
    change: 'freeze',
    expect: () => ({
      images: heldInProduction,
      migrations: stoppedBeforeProduction,
      mainRun: true,
      failingJobs: [],
      ended: 'blocked',
      summary:
        'production is frozen (PIPELINE_FREEZE, by alice, with a reason): the release goes through dev and staging, the production plan shows the freeze, no one is asked to approve, and production ends as blocked with nothing changed',
    }),
  },
  'production-lags': {
    previous: true,
    runs: ['feature', 'main-rejected', 'main'],
    expect: () => ({
      images: released,
      migrations: everywhere(true),
      mainRun: true,
      // The first main-branch run's production approval, rejected on purpose.
      failingJobs: ['production/deploy'],
      ended: 'succeeded',
      summary:
        "production's approval is rejected once, so staging keeps the new migration and production stays without it; the release runs again: staging's plan has nothing pending while production's own plan, before the approval, shows it to run",
    }),
  },
} satisfies Record<string, Scenario>;

export type ScenarioName = keyof typeof SCENARIO_TABLE;
export const SCENARIOS = Object.keys(SCENARIO_TABLE) as ScenarioName[];
export const scenario = (name: ScenarioName): Scenario => SCENARIO_TABLE[name];
export const expectationFor = (name: ScenarioName, strategy: Strategy): Expectation =>
  scenario(name).expect(strategy);

function digest(seed: string): string {
  return `sha256:${createHash('sha256').update(seed).digest('hex')}`;
}

/** The digest the caller's build job derives when the Docker build is skipped (as in the rehearsal). */
export function imageForCommit(sha: string, imageRepository = 'ghcr.io/acme/shop'): string {
  return `${imageRepository}@${digest(sha)}`;
}

export const PREVIOUS_SHA = '1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c';
export const FEATURE_SHA = '5f1c0d2e9a7b4c3d8e6f1a2b3c4d5e6f7a8b9c0d';
export const MAIN_SHA = '9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d';

/** A migration that fails half-way: its UPDATE names a column no table has. */
export const BAD_MIGRATION = `-- migrate:up
-- A migration that fails half-way: the column exists in no table.
CREATE TABLE rehearsal_priorities (id integer PRIMARY KEY, priority integer NOT NULL DEFAULT 0);
UPDATE rehearsal_priorities SET priority = missing_column + 1;

-- migrate:down
DROP TABLE rehearsal_priorities;
`;
