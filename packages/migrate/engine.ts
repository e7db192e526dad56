import type pg from 'pg';
import { errorMessage, formatDuration, InputError, type Logger, systemClock } from '../core/index.ts';
import { dumpDatabase, restoreCommand } from './backup.ts';
import { runIntegrityChecks, validatePendingConstraints } from './checks.ts';
import {
  type ConnectionTarget,
  connectClient,
  describeTarget,
  resolveConnection,
  SSL_MODES,
} from './connection.ts';
import { type IntegrityCheck, loadChecks, loadMigrations, type Migration } from './files.ts';
import {
  advisoryLockKey,
  deleteMigration,
  ensureHistoryTable,
  type HistoryRow,
  type HistoryTable,
  historyTable,
  IncompatibleHistoryError,
  readHistory,
  recordMigration,
} from './history.ts';
import { lineAndColumn, type SqlStatement, splitStatements, statementAtPosition } from './sql.ts';
import {
  type DriftFinding,
  MIGRATE_COMMANDS,
  type MigrationErrorReason,
  type MigrationFailure,
  type MigrationResult,
  type MigrationRow,
  MigrationRunError,
  type RunMigrationsOptions,
} from './types.ts';

export const APPLICATION_NAME = 'pipeline-migrate';
export const LOCK_APPLICATION_NAME = 'pipeline-migrate-lock';

const byVersion = (a: { version: bigint }, b: { version: bigint }) =>
  a.version < b.version ? -1 : a.version > b.version ? 1 : 0;

interface Validated {
  history: HistoryTable;
  target: ConnectionTarget;
  migrations: Migration[];
  checks: IntegrityCheck[];
  targetVersion: bigint | undefined;
  steps: number | undefined;
}

/** Every input checked, every file read, before any connection is opened. */
async function validate(options: RunMigrationsOptions): Promise<Validated> {
  const { command } = options;
  if (!(MIGRATE_COMMANDS as readonly string[]).includes(command))
    throw new InputError(
      'command',
      `has ${JSON.stringify(command)}`,
      `one of ${MIGRATE_COMMANDS.join(', ')}`,
    );
  if (options.sslmode !== undefined && !(SSL_MODES as readonly string[]).includes(options.sslmode))
    throw new InputError(
      'sslmode',
      `has ${JSON.stringify(options.sslmode)}`,
      `one of ${SSL_MODES.join(', ')}`,
    );
  for (const [input, value] of [
    ['lock-timeout', options.lockTimeoutMs],
    ['statement-lock-timeout', options.statementLockTimeoutMs],
    ['statement-timeout', options.statementTimeoutMs],
  ] as const) {
    if (value !== undefined && (!Number.isFinite(value) || value < 0))
      throw new InputError(input, `has ${value}`, 'a duration of 0 or more');
  }
  if (options.steps !== undefined && (!Number.isInteger(options.steps) || options.steps < 1))
    throw new InputError('steps', `has ${options.steps}`, 'a whole number of at least 1');
  if (options.steps !== undefined && command !== 'down')
    throw new InputError('steps', `is set for ${command}`, 'steps only with the down command');
  if (options.steps !== undefined && options.target !== undefined && options.target.trim() !== '')
    throw new InputError('steps', 'is set together with target', 'either steps or target for down');
  let targetVersion: bigint | undefined;
  if (options.target !== undefined && options.target.trim() !== '') {
    const text = options.target.trim();
    if (!/^\d+$/.test(text))
      throw new InputError('target', `has ${JSON.stringify(text)}`, 'a migration version (digits)');
    if (command === 'status' || command === 'verify')
      throw new InputError('target', `is set for ${command}`, 'target only with plan, up, down and baseline');
    targetVersion = BigInt(text);
  }
  if (options.backup && !options.backup.path.trim())
    throw new InputError('backup-path', 'is empty', 'a file path for the pg_dump archive');

  const history = historyTable(options.schema, options.table);
  const target = resolveConnection({
    databaseUrl: options.databaseUrl,
    sslmode: options.sslmode,
    sslRootCert: options.sslRootCert,
    env: options.env ?? process.env,
    logger: options.logger,
  });
  const migrations = await loadMigrations(options.dir);
  const checks = options.checksDir ? await loadChecks(options.checksDir) : [];

  if (
    targetVersion !== undefined &&
    command !== 'down' &&
    !migrations.some((m) => m.version === targetVersion)
  )
    throw new InputError(
      'target',
      `has ${targetVersion}, which is not the version of a migration file`,
      'the version of a file in the migrations directory',
    );
  return { history, target, migrations, checks, targetVersion, steps: options.steps };
}

function emptyResult(options: RunMigrationsOptions, history: HistoryTable): MigrationResult {
  return {
    command: options.command,
    table: history.display,
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

function isConnectionLoss(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (code === '57P01' || code === '57P02' || code === '57P03' || code === 'ECONNRESET' || code === 'EPIPE')
    return true;
  return /connection terminated|connection (?:is )?(?:closed|ended)|client has encountered a connection error|not queryable/i.test(
    errorMessage(error),
  );
}

interface PgErrorFields {
  code?: string;
  position?: string;
  detail?: string;
  hint?: string;
  where?: string;
}

/** The work of one run, with its sessions and the result it builds up. */
class Run {
  readonly options: RunMigrationsOptions;
  readonly v: Validated;
  readonly log: Logger;
  readonly clock;
  readonly result: MigrationResult;
  readonly rows = new Map<string, MigrationRow>();
  db: pg.Client | undefined;
  lock: pg.Client | undefined;
  dbLost: Error | undefined;
  lockLost: Error | undefined;
  closing = false;
  historyRows: HistoryRow[] = [];

  constructor(options: RunMigrationsOptions, v: Validated) {
    this.options = options;
    this.v = v;
    this.log = options.logger;
    this.clock = options.clock ?? systemClock;
    this.result = emptyResult(options, v.history);
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
    const notApplied = new Set<MigrationRow['state']>(
      this.options.command === 'plan' ? ['planned'] : ['pending', 'rolled-back', 'failed'],
    );
    this.result.pending = rows.filter((r) => notApplied.has(r.state)).map((r) => r.version);
    const done = rows.filter(
      (r) => r.state === 'applied' || r.state === 'migrated' || r.state === 'baselined',
    );
    this.result.currentVersion = done.length > 0 ? done[done.length - 1]!.version : undefined;
  }

  async connect(): Promise<void> {
    this.db = await connectClient(this.v.target, APPLICATION_NAME, (error) => {
      this.dbLost ??= error;
    });
    this.db.on('end', () => {
      if (!this.closing) this.dbLost ??= new Error('the session ended');
    });
    const settings: [string, string][] = [];
    if (this.options.statementLockTimeoutMs !== undefined)
      settings.push(['lock_timeout', `${Math.round(this.options.statementLockTimeoutMs)}ms`]);
    if (this.options.statementTimeoutMs !== undefined)
      settings.push(['statement_timeout', `${Math.round(this.options.statementTimeoutMs)}ms`]);
    for (const [name, value] of settings)
      await this.db.query('SELECT set_config($1, $2, false)', [name, value]);
  }

  async acquireLock(): Promise<void> {
    const key = advisoryLockKey(this.v.history);
    this.lock = await connectClient(this.v.target, LOCK_APPLICATION_NAME, (error) => {
      this.lockLost ??= error;
    });
    this.lock.on('end', () => {
      if (!this.closing) this.lockLost ??= new Error('the session ended');
    });
    const tried = await this.lock.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [
      key,
    ]);
    if (tried.rows[0]?.ok) return;
    const holder = await this.lockHolder(key);
    const waitMs = this.options.lockTimeoutMs;
    if (waitMs <= 0)
      this.fail(
        'lock-timeout',
        `Another run holds the migration lock for ${this.v.history.display}${holder}; lock-timeout is 0, so not waiting. Nothing was changed.`,
      );
    this.log.info(`Waiting up to ${formatDuration(waitMs)} for the migration lock${holder}`);
    try {
      // Only lock_timeout may end this wait, not a statement_timeout the role happens to carry.
      await this.lock.query(`SELECT set_config('statement_timeout', '0', false)`);
      await this.lock.query('SELECT set_config($1, $2, false)', ['lock_timeout', `${Math.round(waitMs)}ms`]);
      await this.lock.query('SELECT pg_advisory_lock($1::bigint)', [key]);
      await this.lock.query(`SELECT set_config('lock_timeout', '0', false)`);
    } catch (error) {
      if ((error as PgErrorFields).code === '55P03')
        this.fail(
          'lock-timeout',
          `Another run held the migration lock for ${this.v.history.display}${await this.lockHolder(key)} for longer than lock-timeout (${formatDuration(waitMs)}). Nothing was changed.`,
          error,
        );
      throw error;
    }
    this.log.info('Acquired the migration lock');
  }

  async lockHolder(key: string): Promise<string> {
    const k = BigInt.asUintN(64, BigInt(key));
    try {
      const { rows } = await this.lock!.query<{
        pid: number;
        application_name: string;
        usename: string;
        client_addr: string | null;
        backend_start: Date;
      }>(
        `SELECT a.pid, a.application_name, a.usename, a.client_addr::text AS client_addr, a.backend_start
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid AND l.objsubid = 1`,
        [(k >> 32n).toString(), (k & 0xffffffffn).toString()],
      );
      const h = rows[0];
      if (!h) return '';
      return ` (PostgreSQL backend ${h.pid}, ${h.application_name || 'no application name'}, user ${h.usename}${h.client_addr ? ` from ${h.client_addr}` : ''}, connected ${h.backend_start.toISOString()})`;
    } catch {
      return '';
    }
  }

  async readHistory(): Promise<void> {
    try {
      this.historyRows = await readHistory(this.db!, this.v.history);
    } catch (error) {
      if (error instanceof IncompatibleHistoryError) this.fail('incompatible-table', error.message, error);
      throw error;
    }
    this.rows.clear();
    const files = new Map(this.v.migrations.map((m) => [m.id, m]));
    for (const h of this.historyRows) {
      const file = files.get(h.id);
      this.rows.set(h.id, {
        version: h.id,
        name: h.name,
        file: file?.file,
        state: !file ? 'missing' : h.success ? 'applied' : 'failed',
        durationMs: h.durationMs,
        appliedAt: h.appliedAt.toISOString(),
        appliedBy: h.appliedBy ?? undefined,
        transactional: file?.upTransactional ?? true,
      });
    }
    for (const m of this.v.migrations) {
      if (this.rows.has(m.id)) continue;
      this.rows.set(m.id, {
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
    this.result.drift = this.findDrift();
  }

  findDrift(): DriftFinding[] {
    const files = new Map(this.v.migrations.map((m) => [m.id, m]));
    const drift: DriftFinding[] = [];
    let latest: bigint | undefined;
    for (const h of this.historyRows) {
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
      } else if (h.success && file.checksum !== h.checksum) {
        drift.push({
          kind: 'edited',
          version: h.id,
          name: h.name,
          file: file.file,
          detail: `the up section changed after it was applied (applied sha256 ${h.checksum.slice(0, 12)}…, file ${file.checksum.slice(0, 12)}…)`,
        });
      }
    }
    const known = new Set(this.historyRows.map((h) => h.id));
    for (const m of this.v.migrations) {
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

  failDrift(drift: DriftFinding[]): void {
    if (drift.length === 0) return;
    const lines = drift.map(
      (d) => `  ${d.kind}: ${d.file ?? `version ${d.version} (${d.name})`}: ${d.detail}`,
    );
    if (this.options.allowDrift) {
      this.log.warning(`Drift allowed (allow-drift):\n${lines.join('\n')}`);
      return;
    }
    this.fail(
      'drift',
      `The migrations on disk do not match the history in ${this.v.history.display}:\n${lines.join('\n')}\n` +
        'Nothing was changed. Restore the files as applied (add a new migration instead of editing one), or set allow-drift to proceed.',
    );
  }

  /** Failed non-transactional migrations whose file is unchanged block up and verify. */
  failBlocked(): void {
    const files = new Map(this.v.migrations.map((m) => [m.id, m]));
    const stuck = this.historyRows.filter((h) => !h.success && files.get(h.id)?.checksum === h.checksum);
    if (stuck.length === 0) return;
    const list = stuck
      .map(
        (h) =>
          `  ${files.get(h.id)!.file} failed on ${h.appliedAt.toISOString()} outside a transaction: ${h.error ?? 'no error recorded'}`,
      )
      .join('\n');
    this.fail(
      'blocked',
      `Migrations are blocked by a non-transactional migration that failed part-way, so the database may hold part of it:\n${list}\n` +
        'Inspect the database, then either fix the file so it can run again (e.g. DROP INDEX IF EXISTS the invalid index first, ' +
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS) and re-run up, revert it with down, or mark it applied with baseline (target = its version).',
    );
  }

  pendingForUp(): Migration[] {
    const recorded = new Map(this.historyRows.map((h) => [h.id, h]));
    return this.v.migrations.filter((m) => {
      const h = recorded.get(m.id);
      if (h?.success) return false;
      if (this.v.targetVersion !== undefined && m.version > this.v.targetVersion) return false;
      return true;
    });
  }

  async backup(): Promise<void> {
    const backup = this.options.backup;
    if (!backup) return;
    this.log.info(`Backing up ${describeTarget(this.v.target)} to ${backup.path} (pg_dump -Fc)`);
    const started = this.clock.now();
    try {
      const path = await dumpDatabase(
        this.v.target,
        backup.path,
        this.options.pgDumpPath ?? 'pg_dump',
        this.options.env ?? process.env,
      );
      this.result.backupPath = path;
      this.result.restoreCommand = restoreCommand(this.v.target, path);
      this.log.info(`Backup written in ${formatDuration(this.clock.now() - started)}: ${path}`);
    } catch (error) {
      this.fail(
        'backup-failed',
        `The backup before migrating failed, so no migration was applied: ${errorMessage(error)}`,
        error,
      );
    }
  }

  /**
   * Proves the lock session is alive (so the advisory lock is still ours) right before a commit or
   * a non-transactional step; if it died, another run may have started, so we stop (rolling back
   * the open transaction) rather than risk applying a migration twice.
   */
  async assertLock(before: string, inTransaction: boolean): Promise<void> {
    if (!this.lockLost) {
      try {
        await this.lock!.query('SELECT 1');
      } catch (error) {
        this.lockLost = error instanceof Error ? error : new Error(String(error));
      }
    }
    if (!this.lockLost) return;
    if (inTransaction) await this.safeRollback();
    this.fail(
      'lock-lost',
      `Lost the session holding the migration lock (${errorMessage(this.lockLost)}) before ${before}; ` +
        `stopped so that no concurrent run can apply it twice.${inTransaction ? ' The open transaction was rolled back.' : ''} ` +
        `Earlier migrations of this run stay applied.${this.restoreHint()}`,
    );
  }

  /** Turns a PostgreSQL error into a message naming file, statement, position and PostgreSQL's own words. */
  describe(
    error: unknown,
    m: Migration,
    sql: string,
    file: string,
    statement?: SqlStatement,
  ): MigrationFailure {
    const e = error as PgErrorFields;
    let position: number | undefined;
    let located = statement;
    if (e.position && /^\d+$/.test(e.position)) {
      const raw = Number(e.position);
      position = statement ? statement.start + raw : raw;
      located ??= statementAtPosition(sql, position);
    }
    const where = position !== undefined ? lineAndColumn(sql, position) : undefined;
    const parts = [`${file} failed: ${errorMessage(error)}${e.code ? ` (SQLSTATE ${e.code})` : ''}`];
    if (located) {
      const text = located.text.length > 300 ? `${located.text.slice(0, 297)}...` : located.text;
      parts.push(`Statement at line ${located.line}: ${text}`);
    } else if (!isConnectionLoss(error)) {
      parts.push('PostgreSQL reported no position for this error, so the statement is not known');
    }
    if (where) parts.push(`Position ${position} (line ${where.line}, column ${where.column})`);
    if (e.detail) parts.push(`Detail: ${e.detail}`);
    if (e.hint) parts.push(`Hint: ${e.hint}`);
    if (e.where) parts.push(`Context: ${e.where}`);
    if (e.code === '55P03' && this.options.statementLockTimeoutMs !== undefined)
      parts.push(
        `A statement waited longer than statement-lock-timeout (${formatDuration(this.options.statementLockTimeoutMs)}) for a lock another session holds`,
      );
    if (
      e.code === '57014' &&
      this.options.statementTimeoutMs !== undefined &&
      /statement timeout/i.test(errorMessage(error))
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

  async safeRollback(): Promise<void> {
    if (this.dbLost) return;
    await this.db!.query('ROLLBACK').catch(() => {});
  }

  restoreHint(): string {
    return this.result.restoreCommand
      ? `\nTo restore the backup taken before this run: ${this.result.restoreCommand}`
      : '';
  }

  /** Whether a migration's history row exists now, asked on the lock session (the other may be dead). */
  async recordedNow(id: string): Promise<boolean | undefined> {
    try {
      const { rows } = await this.lock!.query(
        `SELECT 1 FROM ${this.v.history.sql} WHERE version = $1::bigint AND success`,
        [id],
      );
      return rows.length > 0;
    } catch {
      return undefined;
    }
  }

  /**
   * Runs a section one statement at a time (in the caller's transaction, or in autocommit for
   * no-transaction sections), so that any error, even one PostgreSQL gives no position for (a lock
   * or statement timeout, a constraint violation, a killed session), names its statement.
   */
  async runSection(m: Migration, sql: string, file: string): Promise<void> {
    for (const statement of splitStatements(sql)) {
      try {
        await this.db!.query(statement.text);
      } catch (error) {
        throw new SectionError(error, this.describe(error, m, sql, file, statement));
      }
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
    }
  }

  async applyEach(pending: Migration[]): Promise<void> {
    const done: string[] = [];
    for (const m of pending) {
      const started = this.clock.now();
      this.log.info(`Applying ${m.file}${m.upTransactional ? '' : ' (no transaction)'}`);
      if (m.upTransactional) {
        try {
          await this.db!.query('BEGIN');
          await this.runSection(m, m.up, m.file);
          await recordMigration(this.db!, this.v.history, this.entry(m, started, true));
          await this.assertLock(`committing ${m.file}`, true);
          await this.db!.query('COMMIT');
        } catch (error) {
          if (error instanceof MigrationRunError) throw error;
          await this.safeRollback();
          await this.failMigration(error, m, done, true);
        }
      } else {
        await this.assertLock(m.file, false);
        try {
          await this.runSection(m, m.up, m.file);
          await recordMigration(this.db!, this.v.history, this.entry(m, started, true));
        } catch (error) {
          await this.failMigration(error, m, done, false, started);
        }
      }
      const took = this.clock.now() - started;
      this.setState(m.id, 'migrated', took);
      this.result.applied.push(m.id);
      done.push(m.file);
      this.log.info(`Applied ${m.file} in ${formatDuration(took)}`);
    }
  }

  entry(m: Migration, started: number, success: boolean, error?: string) {
    return {
      id: m.id,
      name: m.name,
      checksum: m.checksum,
      durationMs: this.clock.now() - started,
      appliedBy: this.options.appliedBy,
      success,
      error,
    };
  }

  async failMigration(
    error: unknown,
    m: Migration,
    done: string[],
    transactional: boolean,
    started = 0,
  ): Promise<never> {
    const failure = error instanceof SectionError ? error.failure : this.describe(error, m, m.up, m.file);
    const cause = error instanceof SectionError ? error.cause : error;
    this.result.failure = failure;
    this.setState(m.id, 'failed');
    const earlier =
      done.length > 0 ? ` The ${done.length} migration(s) before it in this run stay applied.` : '';
    const lost = isConnectionLoss(cause) || this.dbLost !== undefined;
    if (transactional) {
      if (lost) {
        const committed = await this.recordedNow(m.id);
        if (committed) {
          this.setState(m.id, 'migrated');
          this.result.applied.push(m.id);
          this.fail(
            'connection-lost',
            `The connection to PostgreSQL was lost right after ${m.file} committed (${errorMessage(cause)}); it is applied and recorded.${earlier}`,
            cause,
          );
        }
        this.fail(
          'connection-lost',
          `The connection to PostgreSQL was lost while applying ${m.file}: ${errorMessage(cause)}. ` +
            `It ran in a transaction, which PostgreSQL rolls back when the session ends, so the database is as it was before ${m.file} and the history does not list it.${earlier}${this.restoreHint()}`,
          cause,
        );
      }
      this.fail(
        'migration-failed',
        `${failure.message}\nThe migration ran in a transaction and was rolled back: the database and ${this.v.history.display} are as before it.${earlier}${this.restoreHint()}`,
        cause,
      );
    }
    // Outside a transaction part of it may have happened: say so in the history, where the next run will see it.
    const client = lost ? this.lock! : this.db!;
    let recorded = false;
    try {
      await ensureHistoryTable(client, this.v.history);
      await recordMigration(
        client,
        this.v.history,
        this.entry(m, started, false, failure.message.slice(0, 2000)),
      );
      recorded = true;
    } catch (recordError) {
      this.log.error(
        `Could not record the failure of ${m.file} in ${this.v.history.display}: ${errorMessage(recordError)}`,
      );
    }
    this.fail(
      lost ? 'connection-lost' : 'migration-failed',
      `${lost ? `The connection to PostgreSQL was lost while applying ${m.file}. ` : ''}${failure.message}\n` +
        `${m.file} runs outside a transaction (-- migrate:no-transaction), so the statements before the failing one stay applied. ` +
        (recorded
          ? `It is recorded as failed in ${this.v.history.display} and blocks further runs until the file is fixed and re-run, reverted with down, or marked with baseline.`
          : 'Its failure could not be recorded; inspect the database before the next run.') +
        earlier +
        this.restoreHint(),
      cause,
    );
  }

  async applyBatch(pending: Migration[]): Promise<void> {
    const outside = pending.find((m) => !m.upTransactional);
    if (outside)
      this.fail(
        'migration-failed',
        `batch cannot include ${outside.file}: it is marked -- migrate:no-transaction. Nothing was changed.`,
      );
    this.log.info(`Applying ${pending.length} migration(s) in one transaction`);
    const timings = new Map<string, number>();
    let current: Migration | undefined;
    try {
      await this.db!.query('BEGIN');
      for (const m of pending) {
        current = m;
        const started = this.clock.now();
        await this.runSection(m, m.up, m.file);
        await recordMigration(this.db!, this.v.history, this.entry(m, started, true));
        timings.set(m.id, this.clock.now() - started);
      }
      current = undefined;
      await this.assertLock('committing the batch', true);
      await this.db!.query('COMMIT');
    } catch (error) {
      if (error instanceof MigrationRunError) throw error;
      await this.safeRollback();
      const cause = error instanceof SectionError ? error.cause : error;
      const m = current ?? pending[pending.length - 1]!;
      this.result.failure =
        error instanceof SectionError ? error.failure : this.describe(error, m, m.up, m.file);
      for (const p of pending) if (timings.has(p.id)) this.setState(p.id, 'rolled-back', timings.get(p.id));
      if (current) this.setState(current.id, 'failed');
      const lost = isConnectionLoss(cause) || this.dbLost !== undefined;
      this.fail(
        lost ? 'connection-lost' : 'migration-failed',
        `${lost ? `The connection to PostgreSQL was lost during the batch (${errorMessage(cause)}). ` : ''}${current ? this.result.failure.message : `COMMIT failed: ${errorMessage(cause)}`}\n` +
          `The batch ran in one transaction and was rolled back: none of its ${pending.length} migration(s) is applied, the database and ${this.v.history.display} are as before the run.${this.restoreHint()}`,
        cause,
      );
    }
    for (const m of pending) {
      this.setState(m.id, 'migrated', timings.get(m.id));
      this.result.applied.push(m.id);
    }
  }

  async revert(list: { h: HistoryRow; m: Migration }[]): Promise<void> {
    const revertOne = async (h: HistoryRow, m: Migration, inBatch: boolean) => {
      const file = m.downFile ?? m.file;
      const started = this.clock.now();
      this.log.info(`Reverting ${file}`);
      if (inBatch || m.downTransactional) {
        await this.runSection(m, m.down!, file);
        await deleteMigration(this.db!, this.v.history, h.id);
      } else {
        try {
          await this.runSection(m, m.down!, file);
        } catch (error) {
          const failure =
            error instanceof SectionError ? error.failure : this.describe(error, m, m.down!, file);
          const cause = error instanceof SectionError ? error.cause : error;
          const client = this.dbLost || isConnectionLoss(cause) ? this.lock! : this.db!;
          await recordMigration(client, this.v.history, {
            ...this.entry(m, started, false, `down: ${failure.message}`.slice(0, 2000)),
          }).catch(() => {});
          throw error;
        }
        await deleteMigration(this.db!, this.v.history, h.id);
      }
      return this.clock.now() - started;
    };
    const failWith = (error: unknown, m: Migration, transactional: boolean) => {
      const file = m.downFile ?? m.file;
      const cause = error instanceof SectionError ? error.cause : error;
      this.result.failure =
        error instanceof SectionError ? error.failure : this.describe(error, m, m.down!, file);
      this.setState(m.id, 'failed');
      const lost = isConnectionLoss(cause) || this.dbLost !== undefined;
      this.fail(
        lost ? 'connection-lost' : 'migration-failed',
        `${lost ? 'The connection to PostgreSQL was lost. ' : ''}${this.result.failure.message}\n` +
          (transactional
            ? `The revert ran in a transaction and was rolled back: ${m.file} stays applied.`
            : `The down section runs outside a transaction; it is recorded as failed in ${this.v.history.display} and blocks further runs until resolved.`) +
          this.restoreHint(),
        cause,
      );
    };
    if (this.options.batch) {
      let current: Migration | undefined;
      try {
        await this.db!.query('BEGIN');
        const took: [string, number][] = [];
        for (const { h, m } of list) {
          current = m;
          took.push([m.id, await revertOne(h, m, true)]);
        }
        await this.assertLock('committing the batch', true);
        await this.db!.query('COMMIT');
        for (const [id, ms] of took) {
          this.setState(id, 'reverted', ms);
          this.result.reverted.push(id);
        }
      } catch (error) {
        if (error instanceof MigrationRunError) throw error;
        await this.safeRollback();
        failWith(error, current ?? list[list.length - 1]!.m, true);
      }
      return;
    }
    for (const { h, m } of list) {
      const transactional = m.downTransactional;
      if (!transactional) await this.assertLock(`reverting ${m.file}`, false);
      try {
        if (transactional) await this.db!.query('BEGIN');
        const ms = await revertOne(h, m, false);
        if (transactional) {
          await this.assertLock(`committing the revert of ${m.file}`, true);
          await this.db!.query('COMMIT');
        }
        this.setState(m.id, 'reverted', ms);
        this.result.reverted.push(m.id);
        this.log.info(`Reverted ${m.downFile ?? m.file} in ${formatDuration(ms)}`);
      } catch (error) {
        if (error instanceof MigrationRunError) throw error;
        if (transactional) await this.safeRollback();
        failWith(error, m, transactional);
      }
    }
  }

  async integrity(): Promise<void> {
    if (this.v.checks.length > 0)
      this.result.checks = await runIntegrityChecks(this.db!, this.v.checks, this.log);
    if (this.options.validateConstraints !== false)
      this.result.constraints = await validatePendingConstraints(this.db!, this.log);
  }

  failIntegrity(after: string): void {
    const failedChecks = this.result.checks.filter((c) => !c.passed);
    const failedConstraints = this.result.constraints.filter((c) => !c.validated);
    if (failedChecks.length === 0 && failedConstraints.length === 0) return;
    const lines = [
      ...failedChecks.map(
        (c) =>
          `  check ${c.name}: ${c.error ? `could not run: ${c.error}` : `${c.rowCount} row(s), e.g. ${c.sample[0] ?? ''}`}`,
      ),
      ...failedConstraints.map(
        (c) => `  constraint ${c.constraint} on ${c.schema}.${c.table}: ${c.error ?? 'not valid'}`,
      ),
    ];
    this.fail('checks-failed', `Integrity checks failed ${after}:\n${lines.join('\n')}`);
  }

  async close(): Promise<void> {
    this.closing = true;
    const end = async (client: pg.Client | undefined) => {
      if (!client) return;
      await Promise.race([
        client.end().catch(() => {}),
        new Promise((resolve) => setTimeout(resolve, 5000).unref()),
      ]);
    };
    await end(this.db);
    await end(this.lock); // ending the session releases the advisory lock
  }
}

class SectionError extends Error {
  readonly failure: MigrationFailure;
  constructor(cause: unknown, failure: MigrationFailure) {
    super(failure.message, { cause });
    this.failure = failure;
  }
}

function byVersionText(a: { version: string }, b: { version: string }): number {
  return byVersion({ version: BigInt(a.version) }, { version: BigInt(b.version) });
}

/**
 * Runs one migration command against PostgreSQL. Everything the caller can get wrong (inputs, file
 * names, duplicate versions, sections, the URL, reachability) fails before the first change with an
 * InputError or DatabaseConnectionError; failures after that throw MigrationRunError carrying the
 * partial result for the job summary.
 */
export async function runMigrations(options: RunMigrationsOptions): Promise<MigrationResult> {
  const v = await validate(options);
  const run = new Run(options, v);
  const started = run.clock.now();
  try {
    await run.connect();
    await commands[options.command](run);
    run.finish();
    return run.result;
  } finally {
    run.result.durationMs = run.clock.now() - started;
    await run.close();
  }
}

const commands: Record<RunMigrationsOptions['command'], (run: Run) => Promise<void>> = {
  async status(run) {
    await run.readHistory();
  },

  async plan(run) {
    await run.readHistory();
    const pending = run.pendingForUp();
    for (const m of pending) {
      const row = run.rows.get(m.id)!;
      if (row.state === 'failed' && run.historyRows.find((h) => h.id === m.id)?.checksum === m.checksum)
        continue;
      row.state = 'planned';
      row.sql = m.up.trim();
    }
    run.failBlocked();
    run.failDrift(run.result.drift);
    if (run.options.batch) {
      const outside = pending.find((m) => !m.upTransactional);
      if (outside)
        run.fail(
          'migration-failed',
          `batch cannot include ${outside.file}: it is marked -- migrate:no-transaction`,
        );
    }
  },

  async up(run) {
    await run.acquireLock();
    await run.readHistory(); // after the lock: whatever another run applied meanwhile is now visible
    run.failBlocked();
    run.failDrift(run.result.drift);
    const pending = run.pendingForUp();
    if (pending.length === 0) {
      run.log.info(`Nothing to apply: ${run.v.history.display} is up to date`);
    } else {
      if (run.options.batch) {
        const outside = pending.find((m) => !m.upTransactional);
        if (outside)
          run.fail(
            'migration-failed',
            `batch cannot include ${outside.file}: it is marked -- migrate:no-transaction. Nothing was changed.`,
          );
      }
      await run.backup();
      await ensureHistoryTable(run.db!, run.v.history);
      if (run.options.batch) await run.applyBatch(pending);
      else await run.applyEach(pending);
    }
    await run.integrity();
    run.failIntegrity(`after applying ${run.result.applied.length} migration(s), which stay applied`);
  },

  async down(run) {
    await run.acquireLock();
    await run.readHistory();
    const files = new Map(run.v.migrations.map((m) => [m.id, m]));
    const recorded = [...run.historyRows].sort(byVersion).reverse();
    const chosen =
      run.v.targetVersion !== undefined
        ? recorded.filter((h) => h.version > run.v.targetVersion!)
        : recorded.slice(0, run.v.steps ?? 1);
    if (chosen.length === 0) {
      run.log.info('Nothing to revert');
      return;
    }
    const relevant = run.result.drift.filter(
      (d) => d.kind !== 'out-of-order' && chosen.some((h) => h.id === d.version),
    );
    const missing = chosen.find((h) => !files.has(h.id));
    if (missing)
      run.fail(
        'not-reversible',
        `Cannot revert version ${missing.id} (${missing.name}): no file has that version. Nothing was changed.`,
      );
    run.failDrift(relevant);
    const irreversible = chosen.map((h) => files.get(h.id)!).find((m) => m.down === undefined);
    if (irreversible)
      run.fail(
        'not-reversible',
        `Cannot revert ${irreversible.file}: it has no down section. Nothing was changed.`,
      );
    if (run.options.batch) {
      const outside = chosen.map((h) => files.get(h.id)!).find((m) => !m.downTransactional);
      if (outside)
        run.fail(
          'migration-failed',
          `batch cannot include the down section of ${outside.file}: it is marked -- migrate:no-transaction. Nothing was changed.`,
        );
    }
    await run.backup();
    await run.revert(chosen.map((h) => ({ h, m: files.get(h.id)! })));
  },

  async verify(run) {
    await run.acquireLock();
    await run.readHistory();
    await run.integrity();
    run.failBlocked();
    run.failDrift(run.result.drift);
    run.failIntegrity('on verify');
  },

  async baseline(run) {
    await run.acquireLock();
    await run.readHistory();
    const target = run.v.targetVersion ?? run.v.migrations[run.v.migrations.length - 1]?.version;
    if (target === undefined) {
      run.log.info('No migration files: nothing to baseline');
      return;
    }
    const recorded = new Map(run.historyRows.map((h) => [h.id, h]));
    const marks = run.v.migrations.filter((m) => m.version <= target && !recorded.get(m.id)?.success);
    await ensureHistoryTable(run.db!, run.v.history);
    await run.db!.query('BEGIN');
    try {
      for (const m of marks) {
        await recordMigration(run.db!, run.v.history, {
          id: m.id,
          name: m.name,
          checksum: m.checksum,
          durationMs: 0,
          appliedBy: `${run.options.appliedBy ?? 'unknown'} (baseline: marked applied without running)`,
          success: true,
        });
      }
      await run.assertLock('committing the baseline', true);
      await run.db!.query('COMMIT');
    } catch (error) {
      if (error instanceof MigrationRunError) throw error;
      await run.safeRollback();
      throw error;
    }
    for (const m of marks) {
      run.setState(m.id, 'baselined', 0);
      run.result.baselined.push(m.id);
    }
    run.log.info(
      `Marked ${marks.length} migration(s) up to version ${target} as applied without running them`,
    );
  },
};
