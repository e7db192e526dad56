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

/** A constraint left NOT VALID, by its names. */
export interface NotValidConstraint {
  schema: string;
  table: string;
  constraint: string;
}

export const constraintKey = (c: NotValidConstraint) => JSON.stringify([c.schema, c.table, c.constraint]);

const NOT_VALID_FROM = `FROM pg_catalog.pg_constraint con
       JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE NOT con.convalidated`;

/**
 * The constraints the current transaction left NOT VALID (their catalog row's xmin is its xid),
 * under column names a script's results are told apart by. Sent in a migration's own message.
 */
export const OWN_NOT_VALID_SQL = `SELECT n.nspname AS nv_schema, c.relname AS nv_table, con.conname AS nv_constraint
       ${NOT_VALID_FROM} AND con.xmin::text = (txid_current() % 4294967296)::text`;

/** The rows of OWN_NOT_VALID_SQL among a script's results. */
export function ownNotValidOf(
  results: readonly { fields?: { name: string }[]; rows: unknown[] }[],
): NotValidConstraint[] {
  const found = results.find((r) => r.fields?.[0]?.name === 'nv_schema');
  return ((found?.rows ?? []) as { nv_schema: string; nv_table: string; nv_constraint: string }[]).map(
    (r) => ({
      schema: r.nv_schema,
      table: r.nv_table,
      constraint: r.nv_constraint,
    }),
  );
}

/** Every constraint of the database's own schemas that is NOT VALID. */
export async function notValidConstraints(client: pg.Client): Promise<NotValidConstraint[]> {
  const { rows } = await client.query<NotValidConstraint>(
    `SELECT n.nspname AS schema, c.relname AS table, con.conname AS constraint
       ${NOT_VALID_FROM}
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
      ORDER BY 1, 2, 3`,
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
