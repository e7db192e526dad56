import { createHash } from 'node:crypto';
import type pg from 'pg';
import { InputError, PipelineError } from '../core/index.ts';

/** One row of the history table. */
export interface HistoryRow {
  version: bigint;
  id: string;
  name: string;
  checksum: string;
  appliedAt: Date;
  durationMs: number;
  appliedBy: string | null;
  success: boolean;
  error: string | null;
}

export interface HistoryTable {
  schema: string;
  table: string;
  /** "schema"."table", quoted for SQL. */
  sql: string;
  /** schema.table, for messages. */
  display: string;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const COLUMNS = [
  'version',
  'name',
  'checksum',
  'applied_at',
  'duration_ms',
  'applied_by',
  'success',
  'error',
];

export function historyTable(schema = 'public', table = 'schema_migrations'): HistoryTable {
  for (const [input, value] of [
    ['schema', schema],
    ['table', table],
  ] as const) {
    if (!IDENTIFIER.test(value))
      throw new InputError(
        input,
        `has ${JSON.stringify(value)}, which is not a plain identifier`,
        'letters, digits and underscores, starting with a letter or underscore, at most 63 characters',
      );
  }
  return { schema, table, sql: `"${schema}"."${table}"`, display: `${schema}.${table}` };
}

/**
 * The advisory lock key: the first 8 bytes of sha256("pipeline-migrate:schema.table") as a signed
 * bigint, so runs against different history tables in one database do not block each other.
 */
export function advisoryLockKey(history: HistoryTable): string {
  const digest = createHash('sha256').update(`pipeline-migrate:${history.display}`).digest();
  return digest.readBigInt64BE(0).toString();
}

/** The columns found for the history table: none means it does not exist; others must be ours. */
export function checkHistoryColumns(history: HistoryTable, columns: string[]): boolean {
  if (columns.length === 0) return false;
  const have = new Set(columns);
  const missing = COLUMNS.filter((c) => !have.has(c));
  if (missing.length > 0) throw new IncompatibleHistoryError(history, missing);
  return true;
}

export class IncompatibleHistoryError extends PipelineError {
  readonly missing: string[];
  constructor(history: HistoryTable, missing: string[]) {
    super(
      `The table ${history.display} exists but is not a migration history of this tool (no column ${missing.join(', ')}). ` +
        'dbmate and golang-migrate keep their history in a table of this name. To move over, leave it as it is, ' +
        'give this tool its own history table with the table input (for example table: pipeline_migrations), and run ' +
        'command: baseline with target set to the last version the old tool applied ' +
        `(dbmate: SELECT max(version) FROM ${history.display}; golang-migrate: its one row's version, with dirty false); ` +
        'up then applies only the later files. Otherwise choose another history table with the table/schema inputs.',
    );
    this.missing = missing;
  }
}

/** The schema, table and comment as one script (one round trip). */
export function createHistorySql(history: HistoryTable): string {
  return `CREATE SCHEMA IF NOT EXISTS "${history.schema}";
  CREATE TABLE IF NOT EXISTS ${history.sql} (
    version     bigint PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL,
    applied_by  text,
    success     boolean NOT NULL,
    error       text
  );
  COMMENT ON TABLE ${history.sql} IS 'Schema migrations applied by pipeline run-migrations; success = false marks a non-transactional migration that failed part-way'`;
}

/**
 * The rows of a history table known to exist, as one JSON array in one row: a long history is
 * hundreds of rows, and pg's per-row messages, objects and type parsers were most of reading it
 * (JSON.parse is one native call). The time comes as epoch milliseconds.
 */
export async function readHistoryRows(client: pg.Client, history: HistoryTable): Promise<HistoryRow[]> {
  const { rows } = await client.query<[string | null]>({
    text: `SELECT json_agg(json_build_array(version::text, name, checksum, extract(epoch FROM applied_at) * 1000, duration_ms, applied_by, success, error) ORDER BY version)::text
             FROM ${history.sql}`,
    rowMode: 'array',
  });
  const list = JSON.parse(rows[0]?.[0] ?? '[]') as [
    string,
    string,
    string,
    number,
    number,
    string | null,
    boolean,
    string | null,
  ][];
  return list.map(([version, name, checksum, appliedMs, durationMs, appliedBy, success, error]) => ({
    version: BigInt(version),
    id: version,
    name,
    checksum,
    appliedAt: new Date(appliedMs),
    durationMs,
    appliedBy,
    success,
    error,
  }));
}

export interface HistoryEntry {
  id: string;
  name: string;
  checksum: string;
  durationMs: number;
  appliedBy: string | undefined;
  success: boolean;
  error?: string | undefined;
}

/** Inserts or replaces a row (a re-run of a failed non-transactional migration replaces its failure). */
export async function recordMigration(
  client: pg.Client,
  history: HistoryTable,
  entry: HistoryEntry,
): Promise<void> {
  await client.query(
    `INSERT INTO ${history.sql} (version, name, checksum, applied_at, duration_ms, applied_by, success, error)
     VALUES ($1::bigint, $2, $3, now(), $4, $5, $6, $7)
     ON CONFLICT (version) DO UPDATE SET name = EXCLUDED.name, checksum = EXCLUDED.checksum,
       applied_at = EXCLUDED.applied_at, duration_ms = EXCLUDED.duration_ms, applied_by = EXCLUDED.applied_by,
       success = EXCLUDED.success, error = EXCLUDED.error`,
    [
      entry.id,
      entry.name,
      entry.checksum,
      Math.min(2_147_483_647, Math.round(entry.durationMs)),
      entry.appliedBy ?? null,
      entry.success,
      entry.error ?? null,
    ],
  );
}

/**
 * The history insert of a transactional migration as SQL text, sent in the same message as the
 * migration and its COMMIT. Its duration is measured by the server: statement_timestamp() is when
 * the message arrived.
 */
export function recordSql(
  history: HistoryTable,
  entry: Omit<HistoryEntry, 'durationMs'>,
  literal: (v: string) => string,
  /** A row for this version was read (a failure to replace); else a plain INSERT, cheaper for the server. */
  replaces: boolean,
): string {
  const insert = `INSERT INTO ${history.sql} (version, name, checksum, applied_at, duration_ms, applied_by, success, error)
VALUES (${BigInt(entry.id).toString()}, ${literal(entry.name)}, ${literal(entry.checksum)}, now(),
  LEAST(2147483647, round(1000 * extract(epoch FROM clock_timestamp() - statement_timestamp())))::integer,
  ${entry.appliedBy !== undefined ? literal(entry.appliedBy) : 'NULL'}, ${entry.success}, ${entry.error !== undefined ? literal(entry.error) : 'NULL'})`;
  return replaces
    ? `${insert}
ON CONFLICT (version) DO UPDATE SET name = EXCLUDED.name, checksum = EXCLUDED.checksum,
  applied_at = EXCLUDED.applied_at, duration_ms = EXCLUDED.duration_ms, applied_by = EXCLUDED.applied_by,
  success = EXCLUDED.success, error = EXCLUDED.error`
    : insert;
}

export function deleteSql(history: HistoryTable, id: string): string {
  return `DELETE FROM ${history.sql} WHERE version = ${BigInt(id).toString()}`;
}
