import type { Clock, Logger } from '../core/index.ts';
import { InputError, PipelineError } from '../core/index.ts';
import type { SslMode } from './connection.ts';
import type { LintFinding, LintMode } from './lint.ts';

export const MIGRATE_COMMANDS = [
  'status',
  'plan',
  'up',
  'down',
  'verify',
  'baseline',
  'restore',
  'verify-backup',
] as const;
export type MigrateCommand = (typeof MIGRATE_COMMANDS)[number];

export interface RunMigrationsOptions {
  command: MigrateCommand;
  /** postgres://… ; when absent, the PG* variables (PGHOST, PGUSER, PGPASSWORD, …) as libpq reads them. */
  databaseUrl?: string | undefined;
  /** Wins over the URL's sslmode and PGSSLMODE; default prefer (as libpq). */
  sslmode?: SslMode | undefined;
  /** CA bundle for verify-ca / verify-full. */
  sslRootCert?: string | undefined;
  /** Directory of migration files. */
  dir: string;
  /** Directory of integrity checks: `.sql` files, each a query that must return no rows. */
  checksDir?: string | undefined;
  /** up/plan: apply pending migrations up to and including this version. down: revert those above it ("0" = all). baseline: mark up to it (default: the latest file). */
  target?: string | undefined;
  /** down: how many applied migrations to revert (default 1 when no target). */
  steps?: number | undefined;
  /** History table (default schema_migrations) and its schema (default public). */
  table?: string | undefined;
  schema?: string | undefined;
  /** Run all pending migrations (or all reverts) in one transaction. */
  batch?: boolean | undefined;
  /** How long to wait for the advisory lock another run holds; 0 = do not wait. */
  lockTimeoutMs: number;
  /** SET lock_timeout / statement_timeout for migration statements; undefined keeps the server's. */
  statementLockTimeoutMs?: number | undefined;
  statementTimeoutMs?: number | undefined;
  /**
   * The kinds of drift to proceed despite (out-of-order files are then applied in version order);
   * `true` allows every kind, as allow-drift did before it took kinds.
   */
  allowDrift?: boolean | readonly DriftKind[] | undefined;
  /** restore: the pg_dump archive to put back, and the database name typed as confirmation; verify-backup: the archive to drill (confirm unused). */
  restore?: { path: string; confirm: string } | undefined;
  /** The safety lint of pending migrations (plan, up): error refuses, warn reports (default), off skips. */
  lint?: LintMode | undefined;
  /** Production: the lint also asks for a lock_timeout. */
  production?: boolean | undefined;
  /** Who runs this (repository, run, job): in the session's application_name, so a waiting run can name the holder. */
  runLabel?: string | undefined;
  /** up/down: pg_dump -Fc to this path before changing anything; a failed dump stops the run. */
  backup?: { path: string } | undefined;
  /** Recorded in the history (e.g. "octocat via https://github.com/o/r/actions/runs/1"). */
  appliedBy?: string | undefined;
  /** After up and on verify: VALIDATE every constraint left NOT VALID (default true). */
  validateConstraints?: boolean | undefined;
  /** pg_dump executable (default "pg_dump" on PATH). */
  pgDumpPath?: string | undefined;
  /** pg_restore and psql executables for restore (default on PATH). */
  pgRestorePath?: string | undefined;
  psqlPath?: string | undefined;
  /** Environment for PG* fallbacks and pg_dump (default process.env). */
  env?: NodeJS.ProcessEnv | undefined;
  logger: Logger;
  clock?: Clock | undefined;
  /**
   * The job was cancelled (the runner sends SIGTERM, then SIGKILL seconds later): up and down stop
   * before the next migration, never inside one, and fail saying what was not applied.
   */
  cancelled?: AbortSignal | undefined;
  /**
   * Return without waiting for the session to end (the server's backend exiting takes a few
   * milliseconds); sessionsClosed() resolves once it has. The action writes its report meanwhile.
   */
  closeInBackground?: boolean | undefined;
}

/**
 * A migration's state after the command:
 * applied — applied before this run; migrated — applied by this run; reverted — reverted by this
 * run; baselined — marked applied by this run without running it; pending — not applied;
 * planned — `plan`: would be applied; failed — failed in this run, or recorded as failed
 * (non-transactional) earlier; rolled-back — ran in a batch that failed and was rolled back;
 * missing — in the history but no file on disk.
 */
export type MigrationState =
  | 'applied'
  | 'migrated'
  | 'reverted'
  | 'baselined'
  | 'pending'
  | 'planned'
  | 'failed'
  | 'rolled-back'
  | 'missing';

export interface MigrationRow {
  version: string;
  name: string;
  /** The up file; undefined for a missing migration. */
  file: string | undefined;
  state: MigrationState;
  /** How long it ran in this run, or (for earlier runs) as recorded in the history. */
  durationMs: number | undefined;
  appliedAt: string | undefined;
  appliedBy: string | undefined;
  transactional: boolean;
  /** `plan` only: the SQL that would run. */
  sql?: string;
  /** A failed row of the history: what it recorded (a no-transaction migration that stopped part-way). */
  error?: string;
}

export const DRIFT_KINDS = ['out-of-order', 'edited', 'missing'] as const;
export type DriftKind = (typeof DRIFT_KINDS)[number];

export const ALLOW_DRIFT_FORM =
  'false, or the kinds of drift to allow, comma-separated: out-of-order (a pending file older than the latest applied one), ' +
  'edited (an applied file changed), missing (an applied file deleted); true (every kind) still works but is deprecated';

/**
 * The allow-drift input: `false`/empty, a list of kinds, or the old `true` (every kind, with a
 * deprecation warning, since allowing one late hotfix should not also hide an edited file).
 */
export function parseAllowDrift(text: string | undefined): { kinds: DriftKind[]; deprecated: boolean } {
  const value = (text ?? '').trim().toLowerCase();
  if (value === '' || value === 'false') return { kinds: [], deprecated: false };
  if (value === 'true') return { kinds: [...DRIFT_KINDS], deprecated: true };
  const kinds: DriftKind[] = [];
  for (const word of value.split(/[\s,]+/).filter(Boolean)) {
    if (!(DRIFT_KINDS as readonly string[]).includes(word))
      throw new InputError(
        'allow-drift',
        `has ${JSON.stringify(word)}, which is not a kind of drift`,
        ALLOW_DRIFT_FORM,
      );
    if (!kinds.includes(word as DriftKind)) kinds.push(word as DriftKind);
  }
  return { kinds, deprecated: false };
}

export interface DriftFinding {
  kind: DriftKind;
  version: string;
  name: string;
  file: string | undefined;
  detail: string;
}

export interface CheckResult {
  name: string;
  file: string;
  passed: boolean;
  rowCount: number;
  /** Up to 5 offending rows, as JSON text. */
  sample: string[];
  /** Set when the query itself failed. */
  error?: string;
}

export interface ConstraintResult {
  schema: string;
  table: string;
  constraint: string;
  validated: boolean;
  error?: string;
}

export interface MigrationFailure {
  /** The whole error message: what failed, where, and what state the database is left in. */
  message: string;
  version?: string;
  file?: string;
  statement?: string;
  /** 1-based line in the file, from PostgreSQL's error position. */
  line?: number;
  /** PostgreSQL's error position (1-based character offset in the text sent). */
  position?: number;
  code?: string;
}

export interface MigrationResult {
  command: MigrateCommand;
  /** "schema"."table" of the history. */
  table: string;
  ok: boolean;
  /** Every migration known from files and history, by version. */
  migrations: MigrationRow[];
  /** Versions applied (up), reverted (down) or marked (baseline) by this run, in order. */
  applied: string[];
  reverted: string[];
  baselined: string[];
  /** Versions still pending after the run (for plan: those it would apply). */
  pending: string[];
  /** Highest successfully applied version after the run, or undefined for an empty history. */
  currentVersion: string | undefined;
  backupPath: string | undefined;
  /**
   * The shell command that returns the database to the backup (no password in it): every schema
   * emptied or dropped, then the dump replayed, in one transaction; the restore command does the same.
   */
  restoreCommand: string | undefined;
  /** restore: the archive that was put back. */
  restoredFrom?: string | undefined;
  /** verify-backup: the drill on a scratch copy (dropped afterwards), and what the copy held. */
  backupCheck?:
    | {
        file: string;
        scratchDatabase: string;
        tables: number;
        /** Highest version applied in the backup's history. */
        version: string | undefined;
        /** The live database's history compared with the backup's. */
        liveVersion: string | undefined;
        appliedSinceBackup: string[];
        dropped: boolean;
      }
    | undefined;
  drift: DriftFinding[];
  /** Safety lint findings for the pending migrations (plan, up), acknowledged ones included. */
  lint?: LintFinding[] | undefined;
  checks: CheckResult[];
  constraints: ConstraintResult[];
  failure: MigrationFailure | undefined;
  durationMs: number;
}

export type MigrationErrorReason =
  | 'migration-failed'
  | 'connection-lost'
  | 'drift'
  | 'blocked'
  | 'checks-failed'
  | 'lock-timeout'
  | 'lock-lost'
  | 'restore-failed'
  | 'lint'
  | 'backup-failed'
  | 'not-reversible'
  | 'incompatible-table'
  | 'cancelled';

/** A run that started and then failed; `result` holds what happened, for the job summary. */
export class MigrationRunError extends PipelineError {
  readonly reason: MigrationErrorReason;
  readonly result: MigrationResult;
  constructor(
    reason: MigrationErrorReason,
    message: string,
    result: MigrationResult,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.reason = reason;
    this.result = result;
  }
}

/**
 * Whether a postgres:// URL's user or password holds an @, / or # as typed, not
 * percent-encoded: the URL parser then splits it at the wrong place and the pieces (a "password"
 * of one letter) are nonsense. Two @ in the authority, or one there and one in the path, or a #
 * anywhere, say so; an @ in a query parameter does not count.
 */
export function hasUnencodedUserinfo(url: string): boolean {
  // A fragment means nothing to PostgreSQL: a # is a password's, cut off by the parser.
  if (url.includes('#')) return true;
  const rest = url.slice(url.indexOf('://') + 3).split('?')[0]!;
  const authority = rest.split('/')[0]!;
  const at = authority.split('@').length - 1;
  return at > 1 || (at === 1 && rest.slice(authority.length).includes('@'));
}
