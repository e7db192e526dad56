import type pg from 'pg';
import { errorMessage, type Logger } from '../core/index.ts';
import type { IntegrityCheck } from './files.ts';
import type { CheckResult, ConstraintResult } from './types.ts';

const SAMPLE_ROWS = 5;
const SAMPLE_CHARS = 300;

function sampleOf(row: unknown): string {
  const text = JSON.stringify(row, (_key, value: unknown) =>
    typeof value === 'bigint' ? value.toString() : value,
  );
  return text.length > SAMPLE_CHARS ? `${text.slice(0, SAMPLE_CHARS - 1)}…` : text;
}

/**
 * Runs each check in a read-only transaction that is rolled back, so a check can never change data.
 * A check passes when its (last) query returns no rows.
 */
export async function runIntegrityChecks(
  client: pg.Client,
  checks: IntegrityCheck[],
  logger: Logger,
): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of checks) {
    await client.query('BEGIN READ ONLY');
    try {
      const raw = (await client.query(check.sql)) as pg.QueryResult | pg.QueryResult[];
      const last = Array.isArray(raw) ? raw[raw.length - 1] : raw;
      const rows = (last?.rows ?? []) as unknown[];
      const passed = rows.length === 0;
      results.push({
        name: check.name,
        file: check.file,
        passed,
        rowCount: rows.length,
        sample: rows.slice(0, SAMPLE_ROWS).map(sampleOf),
      });
      if (passed) logger.info(`Integrity check ${check.name}: passed`);
      // Logged, not annotated: the step's one ::error:: (integrity() in steps.ts) lists every failure.
      else logger.info(`Integrity check ${check.name}: ${rows.length} row(s), e.g. ${sampleOf(rows[0])}`);
    } catch (error) {
      results.push({
        name: check.name,
        file: check.file,
        passed: false,
        rowCount: 0,
        sample: [],
        error: errorMessage(error),
      });
      logger.info(`Integrity check ${check.name} could not run: ${errorMessage(error)}`);
    } finally {
      await client.query('ROLLBACK').catch(() => {});
    }
  }
  return results;
}

/**
 * Validates every constraint left NOT VALID (the safe way to add a foreign key or check to a big
 * table is NOT VALID first, VALIDATE later: it only takes a SHARE UPDATE EXCLUSIVE lock).
 * Each VALIDATE commits on its own, so one bad constraint does not undo the others.
 */
export async function validatePendingConstraints(
  client: pg.Client,
  logger: Logger,
): Promise<ConstraintResult[]> {
  const { rows } = await client.query<{ schema: string; table: string; constraint: string }>(
    `SELECT n.nspname AS schema, c.relname AS table, con.conname AS constraint
       FROM pg_constraint con
       JOIN pg_class c ON c.oid = con.conrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE NOT con.convalidated
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
      ORDER BY 1, 2, 3`,
  );
  const results: ConstraintResult[] = [];
  for (const row of rows) {
    const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
    try {
      await client.query(
        `ALTER TABLE ${ident(row.schema)}.${ident(row.table)} VALIDATE CONSTRAINT ${ident(row.constraint)}`,
      );
      results.push({ ...row, validated: true });
      logger.info(`Validated constraint ${row.constraint} on ${row.schema}.${row.table}`);
    } catch (error) {
      results.push({ ...row, validated: false, error: errorMessage(error) });
      logger.info(
        `Constraint ${row.constraint} on ${row.schema}.${row.table} does not hold: ${errorMessage(error)}`,
      );
    }
  }
  return results;
}
