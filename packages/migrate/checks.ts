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

/** A constraint left NOT VALID, by its oid (as text) and names. */
export interface NotValidConstraint {
  oid: string;
  schema: string;
  table: string;
  constraint: string;
}

/** Every constraint of the database's own schemas that is NOT VALID. */
export async function notValidConstraints(client: pg.Client): Promise<NotValidConstraint[]> {
  const { rows } = await client.query<NotValidConstraint>(
    `SELECT con.oid::text AS oid, n.nspname AS schema, c.relname AS table, con.conname AS constraint
       FROM pg_constraint con
       JOIN pg_class c ON c.oid = con.conrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE NOT con.convalidated
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
      ORDER BY 2, 3, 4`,
  );
  return rows;
}

/**
 * Validates the given NOT VALID constraints (the safe way to add a foreign key or check to a big
 * table is NOT VALID first, VALIDATE after: it only takes a SHARE UPDATE EXCLUSIVE lock). Each
 * VALIDATE commits on its own, so one bad constraint does not undo the others.
 */
export async function validateConstraints(
  client: pg.Client,
  constraints: readonly NotValidConstraint[],
  logger: Logger,
): Promise<ConstraintResult[]> {
  const results: ConstraintResult[] = [];
  for (const { schema, table, constraint } of constraints) {
    const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
    const row = { schema, table, constraint };
    try {
      await client.query(
        `ALTER TABLE ${ident(schema)}.${ident(table)} VALIDATE CONSTRAINT ${ident(constraint)}`,
      );
      results.push({ ...row, validated: true });
      logger.info(`Validated constraint ${constraint} on ${schema}.${table}`);
    } catch (error) {
      results.push({ ...row, validated: false, error: errorMessage(error) });
      logger.info(`Constraint ${constraint} on ${schema}.${table} does not hold: ${errorMessage(error)}`);
    }
  }
  return results;
}
