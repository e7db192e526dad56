import { checksumMatches, type Migration } from './files.ts';
import type { HistoryRow } from './history.ts';
import type { DriftFinding, DriftKind, MigrationRow } from './types.ts';

/**
 * What a run would do, decided from the files and the history alone (no database): the rows,
 * drift, what blocks, what is pending, what a down reverts and whether a batch may run. Pure, so
 * every command decides the same way and the decisions are tested without PostgreSQL.
 */
export interface Plan {
  rows: Map<string, MigrationRow>;
  drift: DriftFinding[];
  /** Failed non-transactional migrations whose file is unchanged: they block up, plan and verify. */
  stuck: { history: HistoryRow; migration: Migration }[];
  /** up/plan: what would be applied, in version order. */
  pending: Migration[];
}

const byVersion = (a: { version: bigint }, b: { version: bigint }) =>
  a.version < b.version ? -1 : a.version > b.version ? 1 : 0;

export function byVersionText(a: { version: string }, b: { version: string }): number {
  return byVersion({ version: BigInt(a.version) }, { version: BigInt(b.version) });
}

export function makePlan(
  migrations: Migration[],
  history: HistoryRow[],
  targetVersion: bigint | undefined,
): Plan {
  const files = new Map(migrations.map((m) => [m.id, m]));
  const recorded = new Map(history.map((h) => [h.id, h]));
  const rows = new Map<string, MigrationRow>();
  for (const h of history) {
    const file = files.get(h.id);
    rows.set(h.id, {
      version: h.id,
      name: h.name,
      file: file?.file,
      state: !file ? 'missing' : h.success ? 'applied' : 'failed',
      durationMs: h.durationMs,
      appliedAt: h.appliedAt.toISOString(),
      appliedBy: h.appliedBy ?? undefined,
      transactional: file?.upTransactional ?? true,
      ...(!h.success && h.error ? { error: h.error } : {}),
    });
  }
  for (const m of migrations) {
    if (rows.has(m.id)) continue;
    rows.set(m.id, {
      version: m.id,
      name: m.name,
      file: m.file,
      state: 'pending',
      durationMs: undefined,
      appliedAt: undefined,
      appliedBy: undefined,
      transactional: m.upTransactional,
    });
  }
  const stuck = history
    .filter((h) => {
      const file = files.get(h.id);
      return !h.success && file !== undefined && checksumMatches(file, h.checksum);
    })
    .map((h) => ({ history: h, migration: files.get(h.id)! }));
  const pending = migrations.filter((m) => {
    if (recorded.get(m.id)?.success) return false;
    return targetVersion === undefined || m.version <= targetVersion;
  });
  return { rows, drift: findDrift(migrations, history), stuck, pending };
}

export function findDrift(migrations: Migration[], history: HistoryRow[]): DriftFinding[] {
  const files = new Map(migrations.map((m) => [m.id, m]));
  const drift: DriftFinding[] = [];
  let latest: bigint | undefined;
  for (const h of history) {
    if (h.success && (latest === undefined || h.version > latest)) latest = h.version;
    const file = files.get(h.id);
    if (!file) {
      drift.push({
        kind: 'missing',
        version: h.id,
        name: h.name,
        file: undefined,
        detail: `applied on ${h.appliedAt.toISOString()}, but no file has version ${h.id}`,
      });
    } else if (h.success && !checksumMatches(file, h.checksum)) {
      drift.push({
        kind: 'edited',
        version: h.id,
        name: h.name,
        file: file.file,
        detail: `the up section changed after it was applied (applied sha256 ${h.checksum.slice(0, 12)}…, file ${file.checksum.slice(0, 12)}…)`,
      });
    }
  }
  const known = new Set(history.map((h) => h.id));
  for (const m of migrations) {
    if (!known.has(m.id) && latest !== undefined && m.version < latest) {
      drift.push({
        kind: 'out-of-order',
        version: m.id,
        name: m.name,
        file: m.file,
        detail: `pending, but version ${latest} is already applied`,
      });
    }
  }
  return drift.sort(byVersionText);
}

/** Splits drift into what the allowed kinds let through and what still refuses the run. */
export function judgeDrift(
  drift: DriftFinding[],
  allowed: readonly DriftKind[],
): { allowed: DriftFinding[]; refused: DriftFinding[] } {
  return {
    allowed: drift.filter((d) => allowed.includes(d.kind)),
    refused: drift.filter((d) => !allowed.includes(d.kind)),
  };
}

/** down: the applied migrations to revert, newest first. */
export function chooseReverts(
  history: HistoryRow[],
  targetVersion: bigint | undefined,
  steps: number | undefined,
): HistoryRow[] {
  const recorded = [...history].sort(byVersion).reverse();
  return targetVersion !== undefined
    ? recorded.filter((h) => h.version > targetVersion)
    : recorded.slice(0, steps ?? 1);
}

/** The first migration a batch cannot hold (it must run outside a transaction), checked once. */
export function batchBlocker(migrations: Migration[], section: 'up' | 'down'): Migration | undefined {
  return migrations.find((m) => !(section === 'up' ? m.upTransactional : m.downTransactional));
}
