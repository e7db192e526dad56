import type { CheckReport, GateResult } from '../../packages/health/gate.ts';
import type { Measurement } from '../../packages/health/probes.ts';
import type { MigrationResult } from '../../packages/migrate/index.ts';
import type { GateDecision } from '../../packages/release/gate.ts';
import type { CanaryResult } from '../../packages/rollout/canary.ts';
import type { DeployResult } from '../../packages/rollout/deploy.ts';

/** Results shaped like the rehearsal's, for the summary tests and the rendering tests. */
export const IMAGE =
  'ghcr.io/acme/shop@sha256:47257247a693c36f232860ad9fb04382e5d2e31e5563bda006b99b6abb6df2e9';
export const STABLE =
  'ghcr.io/acme/shop@sha256:59ada84cbe3df16441046d5ba2b63d9a1c88232963ea522597520ba7d902b189';
const T0 = Date.UTC(2026, 11, 1, 12);

function series(
  name: string,
  values: number[],
  type: CheckReport['type'],
  message: (v: number) => string,
): CheckReport {
  const measurements: Measurement[] = values.map((value, i) => ({
    check: name,
    round: i + 1,
    at: T0 + i * 30_000,
    state: 'success',
    value,
    message: message(value),
  }));
  return {
    name,
    type,
    expectation: name,
    ...(type === 'http' ? { threshold: [500] } : {}),
    successes: values.length,
    failures: 0,
    errors: 0,
    inconclusive: 0,
    measurements,
  };
}

/** The staging soak of the rehearsal: 31 latencies of 2–61 ms under a 500 ms limit, and 3 pods throughout. */
export function soakResult(): GateResult {
  const latencies = Array.from({ length: 31 }, (_, i) => (i === 0 ? 61 : 2 + ((i * 7) % 9)));
  return {
    verdict: 'passed',
    reason: 'all 2 check(s) stayed within their limits for 31 measurements over 15m',
    rounds: 31,
    startedAt: T0,
    endedAt: T0 + 15 * 60_000,
    checks: [
      series('health', latencies, 'http', (v) => `HTTP 200 in ${v} ms`),
      series('pods', Array(31).fill(3), 'kubernetes', () => '3/3 available, 0 restarts'),
    ],
  };
}

/** The bad-canary scenario's abort: a canary at 60% errors with no metrics endpoint configured. */
export function abortedCanary(): CanaryResult {
  const probes = (failed: number, total: number): GateResult => ({
    verdict: failed > 2 ? 'failed' : 'passed',
    reason:
      failed > 2
        ? 'canary health failed 3 times (failure limit 2)'
        : 'all 1 check(s) stayed within their limits',
    rounds: total,
    startedAt: T0,
    endedAt: T0 + total * 30_000,
    checks: [
      {
        name: 'canary health',
        type: 'http',
        expectation: 'GET service shop-production/shop-canary:80/health → 2xx',
        successes: total - failed,
        failures: failed,
        errors: 0,
        inconclusive: 0,
        measurements: Array.from({ length: total }, (_, i) => ({
          check: 'canary health',
          round: i + 1,
          at: T0 + i * 30_000,
          state: i < failed ? ('failure' as const) : ('success' as const),
          value: 4,
          message: i < failed ? 'HTTP 500 (expected 2xx)' : 'HTTP 200 in 4 ms',
        })),
      },
    ],
  });
  return {
    ok: false,
    phase: 'aborted',
    mode: 'run',
    weight: 0,
    reason:
      'step 2 (50%) failed: canary health failed 3 times (failure limit 2); all traffic is back on stable',
    image: IMAGE,
    stableImage: STABLE,
    router: 'replicas',
    canary: 'shop-canary',
    steps: [
      {
        step: 1,
        weight: 10,
        effectiveWeight: 10,
        verdict: 'passed',
        reason: 'all 1 check(s) stayed within their limits',
        startedAt: '',
        endedAt: '',
        gate: probes(0, 5),
      },
      {
        step: 2,
        weight: 50,
        effectiveWeight: 50,
        verdict: 'failed',
        reason: 'canary health failed 3 times (failure limit 2)',
        startedAt: '',
        endedAt: '',
        gate: probes(3, 5),
      },
    ],
  };
}

/** The rehearsal's failed-migration run: 004 fails in a transaction after 003 was applied. */
export function failedMigration(): MigrationResult {
  const row = { appliedAt: undefined, appliedBy: undefined, transactional: true } as const;
  return {
    command: 'up',
    table: 'public.schema_migrations',
    ok: false,
    migrations: [
      {
        ...row,
        version: '3',
        name: 'index_orders_by_customer',
        file: '003_index_orders_by_customer.sql',
        state: 'migrated',
        durationMs: 4,
      },
      {
        ...row,
        version: '4',
        name: 'add_order_priority',
        file: '004_add_order_priority.sql',
        state: 'failed',
        durationMs: undefined,
      },
    ],
    applied: ['3'],
    reverted: [],
    baselined: [],
    pending: ['4'],
    currentVersion: '3',
    backupPath: '/tmp/runner/backup-shop-dev-20261201T120000Z.dump',
    restoreCommand: RESTORE,
    drift: [],
    checks: [],
    constraints: [],
    failure: {
      message: [
        '004_add_order_priority.sql failed: column "missing_column" does not exist (SQLSTATE 42703)',
        'Statement at line 4: UPDATE orders SET priority = missing_column + 1',
        'Position 165 (line 4, column 30)',
        'The migration ran in a transaction and was rolled back: the database and public.schema_migrations are as before it. The 1 migration(s) before it in this run stay applied.',
        `To restore the backup: ${RESTORE}`,
      ].join('\n'),
      file: '004_add_order_priority.sql',
      code: '42703',
    },
    durationMs: 41,
  };
}
const RESTORE =
  "pg_restore --clean --if-exists --single-transaction --no-owner --exclude-schema=pg_catalog --dbname 'postgresql://shop@127.0.0.1:5432/shop_dev' /tmp/runner/backup-shop-dev-20261201T120000Z.dump";

/** A rolling deploy to staging that rolled out. */
export function stagingDeploy(): DeployResult {
  return {
    ok: true,
    dryRun: false,
    namespace: 'shop-staging',
    applied: [
      {
        kind: 'ConfigMap',
        name: 'shop-settings-c8t88cdk4d',
        action: 'unchanged',
        source: 'kustomize k8s/staging (document 1)',
      },
      {
        kind: 'Deployment',
        name: 'shop',
        action: 'configured',
        source: 'kustomize k8s/staging (document 3)',
      },
    ],
    imageChanges: [],
    workloads: [
      {
        kind: 'Deployment',
        name: 'shop',
        ok: true,
        message: 'deployment "shop" successfully rolled out',
        revision: '2',
        previousRevision: '1',
        images: [IMAGE],
        previousImages: [STABLE],
        timeline: [{ at: 17_400, message: 'deployment "shop" successfully rolled out' }],
        problems: [],
        diagnostics: [],
      },
    ],
    rolledBack: false,
    notRolledBack: [],
    durationMs: 41_400,
  };
}

export function openGate(): GateDecision {
  return {
    state: 'open',
    blockedBy: [],
    window: { open: true, restricted: false },
    line: 'staging: no deploy window or freeze',
  };
}
