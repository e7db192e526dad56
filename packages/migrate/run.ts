import { errorMessage, formatDuration, type Logger, systemClock } from '../core/index.ts';
import type { NotValidConstraint } from './checks.ts';
import type { ConnectionTarget } from './connection.ts';
import type { IntegrityCheck, Migration } from './files.ts';
import { advisoryLockKey, createHistorySql, type HistoryRow, type HistoryTable } from './history.ts';
import { byVersionText } from './plan.ts';
import { describeHolder, isConnectionLoss, ScriptError, type Session } from './session.ts';
import { lineAndColumn, type SqlStatement, splitStatements, statementAtPosition } from './sql.ts';
import {
  type DriftKind,
  type MigrationErrorReason,
  type MigrationFailure,
  type MigrationResult,
  type MigrationRow,
  MigrationRunError,
  type RunMigrationsOptions,
} from './types.ts';

/** Everything checked and read before any connection is opened. */
export interface Validated {
  history: HistoryTable;
  target: ConnectionTarget;
  migrations: Migration[];
  checks: IntegrityCheck[];
  targetVersion: bigint | undefined;
  steps: number | undefined;
  allowedDrift: readonly DriftKind[];
}

interface PgErrorFields {
  code?: string;
  position?: string;
  detail?: string;
  hint?: string;
  where?: string;
}

/** Where the text sent to PostgreSQL sits in a section, so its error position maps back to the file. */
export interface Sent {
  /** Position in the section = PostgreSQL's position - offset. */
  offset: number;
  /** The statement sent alone, when it was. */
  statement?: SqlStatement;
  /** Statements of the message before the section's (BEGIN): CommandComplete replies to skip. */
  skip?: number;
}

/** A section failed; `failure` says where and how. */
export class SectionError extends Error {
  readonly failure: MigrationFailure;
  constructor(cause: unknown, failure: MigrationFailure) {
    super(failure.message, { cause });
    this.failure = failure;
  }
}

/** One run: its options, its session and the result it builds up, and how it tells its failures. */
export class Run {
  readonly options: RunMigrationsOptions;
  readonly v: Validated;
  readonly log: Logger;
  readonly clock;
  readonly result: MigrationResult;
  session: Session;
  rows = new Map<string, MigrationRow>();
  historyRows: HistoryRow[] = [];
  historyExists = false;
  /** The advisory lock is held by this run's session. */
  locked = false;
  /** historyRows were read while the files were read, under the lock if the command takes it. */
  historyReadAhead = false;
  /** The constraints this run's migrations left NOT VALID (by constraintKey), for up to validate. */
  readonly ownNotValid = new Map<string, NotValidConstraint>();
  /**
   * verify-backup: the live database's version and pending migrations, which the outputs report
   * (the table and the checks are the backup's).
   */
  live: { currentVersion: string | undefined; pending: string[] } | undefined;
  readonly lockKey: string;

  constructor(options: RunMigrationsOptions, v: Validated, session: Session) {
    this.options = options;
    this.v = v;
    this.log = options.logger;
    this.clock = options.clock ?? systemClock;
    this.session = session;
    this.lockKey = advisoryLockKey(v.history);
    this.result = {
      command: options.command,
      table: v.history.display,
      ok: true,
      migrations: [],
      applied: [],
      reverted: [],
      baselined: [],
      pending: [],
      currentVersion: undefined,
      backupPath: undefined,
      restoreCommand: undefined,
      drift: [],
      checks: [],
      constraints: [],
      failure: undefined,
      durationMs: 0,
    };
  }

  fail(reason: MigrationErrorReason, message: string, cause?: unknown): never {
    this.result.ok = false;
    // The summary shows the whole story (what was rolled back, what stays), not just PostgreSQL's words.
    this.result.failure = { ...this.result.failure, message };
    this.finish();
    throw new MigrationRunError(reason, message, this.result, cause === undefined ? undefined : { cause });
  }

  finish(): void {
    const rows = [...this.rows.values()].sort(byVersionText);
    this.result.migrations = rows;
    // A reverted migration is pending again: the next up applies it.
    const notApplied = new Set<MigrationRow['state']>(
      this.options.command === 'plan' ? ['planned'] : ['pending', 'rolled-back', 'failed', 'reverted'],
    );
    this.result.pending = rows
      .filter((r) => notApplied.has(r.state) && r.file !== undefined)
      .map((r) => r.version);
    // A file deleted after it was applied still counts: the database is at the history's version.
    const appliedMissing = new Set(this.historyRows.filter((h) => h.success).map((h) => h.id));
    const done = rows.filter(
      (r) =>
        r.state === 'applied' ||
        r.state === 'migrated' ||
        r.state === 'baselined' ||
        (r.state === 'missing' && appliedMissing.has(r.version)),
    );
    this.result.currentVersion = done.length > 0 ? done[done.length - 1]!.version : undefined;
    if (this.live) {
      this.result.currentVersion = this.live.currentVersion;
      this.result.pending = this.live.pending;
    }
  }

  setState(id: string, state: MigrationRow['state'], durationMs?: number): void {
    const row = this.rows.get(id);
    if (!row) return;
    row.state = state;
    if (durationMs !== undefined) row.durationMs = durationMs;
    if (state === 'migrated' || state === 'baselined') {
      row.appliedAt = new Date(this.clock.now()).toISOString();
      row.appliedBy = this.options.appliedBy;
    } else if (state === 'reverted') {
      row.appliedAt = undefined;
      row.appliedBy = undefined;
    }
  }

  /**
   * How to restore the backup of this run, when the failure left something changed. When it left
   * the database as before the run (a rolled-back migration was the first, or the batch), a restore
   * would only risk what others wrote meanwhile: nothing is suggested, in the message or the summary.
   */
  restoreHint(changed: boolean): string {
    if (!changed) this.result.restoreCommand = undefined;
    return this.result.restoreCommand
      ? `\nTo return the database to the backup taken before this run (everything created since is dropped), run this action with command: restore, or: ${this.result.restoreCommand}`
      : '';
  }

  lost(cause: unknown): boolean {
    return isConnectionLoss(cause) || this.session.lost !== undefined;
  }

  /** Turns a PostgreSQL error into a failure naming file, statement, line, position and PostgreSQL's own words. */
  describe(error: unknown, m: Migration, sql: string, file: string, sent: Sent): MigrationFailure {
    const cause = error instanceof ScriptError ? error.cause : error;
    const e = cause as PgErrorFields;
    const statements = sent.statement
      ? [sent.statement]
      : sql === m.up && m.upStatements
        ? m.upStatements
        : splitStatements(sql);
    let position: number | undefined;
    let located = sent.statement;
    if (e.position && /^\d+$/.test(e.position)) {
      const at = (sent.statement ? sent.statement.start : -sent.offset) + Number(e.position);
      if (at >= 1 && at <= sql.length + 1) {
        position = at;
        located ??= statementAtPosition(sql, position, statements);
      }
    }
    if (!located && error instanceof ScriptError) located = statements[error.completed - (sent.skip ?? 0)];
    const where = position !== undefined ? lineAndColumn(sql, position) : undefined;
    // One line (a RAISE may hold newlines): the first line is the step's `reason`, SQLSTATE included.
    const said = errorMessage(cause).replace(/\s*\n\s*/g, ' ');
    const parts = [`${file} failed: ${said}${e.code ? ` (SQLSTATE ${e.code})` : ''}`];
    if (located) {
      // At most 300 characters on 5 lines: a 10,000-row INSERT is not quoted whole.
      const lines = located.text.split('\n');
      let text = lines.length > 5 ? `${lines.slice(0, 5).join('\n')}...` : located.text;
      if (text.length > 300) text = `${text.slice(0, 297)}...`;
      parts.push(`Statement at line ${located.line}: ${text}`);
    } else if (error instanceof ScriptError && error.completed - (sent.skip ?? 0) >= statements.length) {
      parts.push('Every statement of the section had run: the failure came while recording or committing it');
    } else if (!isConnectionLoss(cause) && position === undefined) {
      parts.push('PostgreSQL reported no position for this error, so the statement is not known');
    }
    if (where) parts.push(`Position ${position} (line ${where.line}, column ${where.column})`);
    if (e.detail) parts.push(`Detail: ${e.detail}`);
    if (e.hint) parts.push(`Hint: ${e.hint}`);
    if (e.where) parts.push(`Context: ${e.where}`);
    if (e.code === '55P03') {
      if (this.options.statementLockTimeoutMs !== undefined)
        parts.push(
          `A statement waited longer than statement-lock-timeout (${formatDuration(this.options.statementLockTimeoutMs)}) for a lock another session holds`,
        );
      const blockers = this.session.blockers;
      if (blockers.length > 0)
        parts.push(`Blocked by ${blockers.map((b) => describeHolder(b, true)).join('; ')}`);
    }
    if (
      e.code === '57014' &&
      this.options.statementTimeoutMs !== undefined &&
      /statement timeout/i.test(errorMessage(cause))
    )
      parts.push(
        `A statement ran longer than statement-timeout (${formatDuration(this.options.statementTimeoutMs)})`,
      );
    return {
      message: parts.join('\n'),
      version: m.id,
      file,
      ...(located ? { statement: located.text, line: located.line } : {}),
      ...(where ? { line: where.line } : {}),
      ...(position !== undefined ? { position } : {}),
      ...(e.code ? { code: e.code } : {}),
    };
  }

  /** The failure an error stands for, whether it was already described or not. */
  failureOf(error: unknown, m: Migration, sql: string, file: string, sent: Sent): MigrationFailure {
    return error instanceof SectionError ? error.failure : this.describe(error, m, sql, file, sent);
  }

  causeOf(error: unknown): unknown {
    return error instanceof SectionError || error instanceof ScriptError ? error.cause : error;
  }

  /** Creates the history table (one message) unless the run found it. */
  async ensureHistory(): Promise<void> {
    if (this.historyExists) return;
    await this.session.query(createHistorySql(this.v.history));
    this.historyExists = true;
  }

  private recordedIds: { rows: HistoryRow[]; ids: Set<string> } | undefined;

  /** Whether the history as read by this run has a row for this version. */
  recorded(id: string): boolean {
    if (this.recordedIds?.rows !== this.historyRows)
      this.recordedIds = { rows: this.historyRows, ids: new Set(this.historyRows.map((h) => h.id)) };
    return this.recordedIds.ids.has(id);
  }

  async rollback(): Promise<void> {
    if (this.session.lost) return;
    await this.session.query('ROLLBACK').catch(() => {});
  }

  logAllowedDrift(lines: string[]): void {
    const kinds = this.v.allowedDrift.join(', ');
    this.log.warning(`Drift allowed (allow-drift: ${kinds}):\n${lines.join('\n')}`);
  }

  errorText(error: unknown): string {
    return errorMessage(this.causeOf(error));
  }
}
