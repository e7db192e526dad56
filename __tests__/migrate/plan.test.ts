/** The migration plan decided from files and history alone: no PostgreSQL. */
import { describe, expect, test } from '@jest/globals';
import type { Migration } from '../../packages/migrate/files.ts';
import type { HistoryRow } from '../../packages/migrate/history.ts';
import { batchBlocker, chooseReverts, findDrift, judgeDrift, makePlan } from '../../packages/migrate/plan.ts';

function migration(version: number, o: Partial<Migration> = {}): Migration {
  return {
    version: BigInt(version),
    id: String(version),
    name: `m${version}`,
    file: `${String(version).padStart(3, '0')}_m${version}.sql`,
    downFile: undefined,
    up: `CREATE TABLE t${version} (id int);`,
    down: `DROP TABLE t${version};`,
    upTransactional: true,
    downTransactional: true,
    checksum: `sum-${version}`,
    ...o,
  };
}

function applied(version: number, o: Partial<HistoryRow> = {}): HistoryRow {
  return {
    version: BigInt(version),
    id: String(version),
    name: `m${version}`,
    checksum: `sum-${version}`,
    appliedAt: new Date(Date.UTC(2026, 10, version)),
    durationMs: 5,
    appliedBy: 'ci',
    success: true,
    error: null,
    ...o,
  };
}

describe('makePlan', () => {
  test('pending is what the history has not applied, in file order, up to the target', () => {
    const files = [migration(1), migration(2), migration(3), migration(4)];
    const plan = makePlan(files, [applied(1), applied(2)], undefined);
    expect(plan.pending.map((m) => m.id)).toEqual(['3', '4']);
    expect(makePlan(files, [applied(1), applied(2)], 3n).pending.map((m) => m.id)).toEqual(['3']);
    expect(makePlan(files, [applied(1), applied(2)], 2n).pending).toEqual([]);
    expect([...plan.rows.values()].map((r) => [r.version, r.state])).toEqual([
      ['1', 'applied'],
      ['2', 'applied'],
      ['3', 'pending'],
      ['4', 'pending'],
    ]);
  });

  test('a failed row (only a no-transaction migration leaves one) is pending and stuck while its file is unchanged; an edited file is a fix', () => {
    const files = [migration(1, { upTransactional: false }), migration(2, { upTransactional: false })];
    const failedBoth = [applied(1, { success: false, error: 'boom' }), applied(2, { success: false })];
    const plan = makePlan(files, failedBoth, undefined);
    expect(plan.pending.map((m) => m.id)).toEqual(['1', '2']);
    expect(plan.stuck.map((s) => s.migration.id)).toEqual(['1', '2']);
    expect(plan.rows.get('1')?.state).toBe('failed');
    const fixed = makePlan(
      [files[0]!, migration(2, { upTransactional: false, checksum: 'fixed' })],
      failedBoth,
      undefined,
    );
    expect(fixed.stuck.map((s) => s.migration.id)).toEqual(['1']);
    expect(fixed.pending.map((m) => m.id)).toEqual(['1', '2']);
  });

  test('an applied migration without a file is a missing row', () => {
    const plan = makePlan([migration(1)], [applied(1), applied(2)], undefined);
    expect(plan.rows.get('2')).toMatchObject({ state: 'missing', file: undefined });
    expect(plan.drift.map((d) => [d.kind, d.version])).toEqual([['missing', '2']]);
  });
});

describe('findDrift', () => {
  test('edited, missing and out-of-order, sorted by version; a clean set has none', () => {
    expect(findDrift([migration(1), migration(2)], [applied(1), applied(2)])).toEqual([]);
    const drift = findDrift(
      [migration(1, { checksum: 'changed' }), migration(2), migration(4)],
      [applied(1), applied(3), applied(4)],
    );
    expect(drift.map((d) => [d.kind, d.version])).toEqual([
      ['edited', '1'],
      ['out-of-order', '2'],
      ['missing', '3'],
    ]);
    expect(drift[0]?.detail).toMatch(/applied sha256 sum-1…, file changed…/);
    expect(drift[1]?.detail).toBe('pending, but version 4 is already applied');
  });

  test('a failed row neither counts as edited nor raises the applied version', () => {
    const drift = findDrift(
      [migration(1), migration(2, { checksum: 'retry' }), migration(3)],
      [applied(1), applied(5, { success: false }), applied(2, { success: false })],
    );
    expect(drift.map((d) => d.kind)).toEqual(['missing']);
  });

  test('versions compare as numbers, not text', () => {
    const drift = findDrift([migration(9), migration(10)], [applied(10)]);
    expect(drift.map((d) => [d.kind, d.version])).toEqual([['out-of-order', '9']]);
    expect(findDrift([migration(9), migration(10)], [applied(9)])).toEqual([]);
  });
});

describe('judgeDrift', () => {
  test('allowing one kind lets only that kind through', () => {
    const drift = findDrift(
      [migration(1, { checksum: 'changed' }), migration(2), migration(3)],
      [applied(1), applied(3)],
    );
    const judged = judgeDrift(drift, ['out-of-order']);
    expect(judged.allowed.map((d) => d.kind)).toEqual(['out-of-order']);
    expect(judged.refused.map((d) => d.kind)).toEqual(['edited']);
    expect(judgeDrift(drift, []).refused).toHaveLength(2);
  });
});

describe('chooseReverts', () => {
  const history = [applied(1), applied(3), applied(2)];
  test('one step by default, newest first', () => {
    expect(chooseReverts(history, undefined, undefined).map((h) => h.id)).toEqual(['3']);
    expect(chooseReverts(history, undefined, 2).map((h) => h.id)).toEqual(['3', '2']);
  });
  test('down to a target reverts everything above it', () => {
    expect(chooseReverts(history, 1n, undefined).map((h) => h.id)).toEqual(['3', '2']);
    expect(chooseReverts(history, 0n, undefined).map((h) => h.id)).toEqual(['3', '2', '1']);
    expect(chooseReverts(history, 3n, undefined)).toEqual([]);
  });
});

describe('batchBlocker', () => {
  test('the first migration whose section must run outside a transaction', () => {
    const files = [
      migration(1),
      migration(2, { upTransactional: false }),
      migration(3, { downTransactional: false }),
    ];
    expect(batchBlocker(files, 'up')?.id).toBe('2');
    expect(batchBlocker(files, 'down')?.id).toBe('3');
    expect(batchBlocker([migration(1)], 'up')).toBeUndefined();
  });
});
