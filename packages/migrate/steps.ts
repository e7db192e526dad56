import { errorMessage, formatDuration, PipelineError } from '../core/index.ts';
import { BackupCancelled, dumpDatabase } from './backup.ts';
import { constraintKey, notValidConstraints, runIntegrityChecks, validateConstraints } from './checks.ts';
import { describeTarget } from './connection.ts';
import type { Migration } from './files.ts';
import { checkHistoryColumns, IncompatibleHistoryError, readHistoryRows } from './history.ts';
import { allowProblems, lintMigrations } from './lint.ts';
import { judgeDrift, makePlan, type Plan } from './plan.ts';
import { KEPT_EXTENSIONS_SQL, restoreCommand } from './restore.ts';
import type { Run } from './run.ts';
import { describeHolder } from './session.ts';
import type { DriftFinding } from './types.ts';

// The steps the commands are made of: settings, the lock, the history and its plan, the refusals
// (drift, blocked, batch, lint), the backup and the integrity checks.

/** The run's own session settings (statement-lock-timeout, statement-timeout) as one statement, or ''. */
export function settingsSql(run: Run): string {
  const settings: [string, string][] = [];
  if (run.options.statementLockTimeoutMs !== undefined)
    settings.push(['lock_timeout', `${Math.round(run.options.statementLockTimeoutMs)}ms`]);
  if (run.options.statementTimeoutMs !== undefined)
    settings.push(['statement_timeout', `${Math.round(run.options.statementTimeoutMs)}ms`]);
  // Names and values are ours (whole milliseconds): literals, so the text can ride in a script.
  return settings.length === 0
    ? ''
    : `SELECT ${settings.map(([name, value]) => `set_config('${name}', '${value}', false)`).join(', ')}`;
}

/**
 * What follows every migration's statements: the session back to its user, role, settings and
 * objects as connected (RESET ALL, DISCARD TEMP, ...) plus the run's own settings, so a SET
 * search_path or lock_timeout in one migration does not reach the next. Without it, the schema a migration creates objects in would depend on how many migrations
 * one run applies (one per deploy in staging, several at once in production).
 */
export function resetSql(run: Run): string {
  const own = settingsSql(run);
  // RESET ALL leaves the role and the session user alone (SET ROLE would outlast the migration),
  // and settings are not all a session holds: temporary tables (which would take the place of a
  // table of the same name in the next migration), prepared statements, held cursors, LISTENs.
  return `RESET SESSION AUTHORIZATION;\nRESET ROLE;\nRESET ALL;\nDISCARD TEMP;\nDEALLOCATE ALL;\nCLOSE ALL;\nUNLISTEN *;${own ? `\n${own};` : ''}`;
}

/** Session settings for migration statements, in one round trip, only when there are any. */
export async function applySettings(run: Run): Promise<void> {
  const sql = settingsSql(run);
  if (sql) await run.session.query(sql);
}

function setHistory(run: Run, columns: string[]): void {
  try {
    run.historyExists = checkHistoryColumns(run.v.history, columns);
  } catch (error) {
    if (error instanceof IncompatibleHistoryError) run.fail('incompatible-table', error.message, error);
    throw error;
  }
}

/**
 * The history table's columns (none: no table), with its quoted name as parameter $n. From the
 * catalog, not information_schema.columns: on a fresh session that view costs the server a few
 * milliseconds of planning, the catalog lookup a tenth of one.
 */
const columnsSql = (n: number) =>
  `ARRAY(SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($${n}) AND attnum > 0 AND NOT attisdropped)`;

/**
 * Tries the advisory lock once, without waiting, on the run's own session (in the same round trip
 * finding the history table). Runs while the files are read; the wait, if any, comes after.
 */
export async function tryLock(run: Run): Promise<boolean> {
  const tried = await run.session.query<{ ok: boolean; columns: string[] }>(
    `SELECT pg_try_advisory_lock($1::bigint) AS ok, ${columnsSql(2)} AS columns`,
    [run.lockKey, run.v.history.sql],
  );
  if (!tried.rows[0]?.ok) return false;
  run.locked = true;
  setHistory(run, tried.rows[0].columns);
  return true;
}

/**
 * Takes the advisory lock on the run's own session (and, in the same round trip, finds the history
 * table), waiting up to lock-timeout for another run and naming it. The history is read after.
 */
export async function lock(run: Run): Promise<void> {
  if (run.locked || (await tryLock(run))) return;
  const { display } = run.v.history;
  const holderText = async () => {
    const h = await run.session.advisoryHolder(run.lockKey);
    return h ? `, held by ${describeHolder(h, true)}` : '';
  };
  const holder = await holderText();
  const waitMs = run.options.lockTimeoutMs;
  if (waitMs <= 0)
    run.fail(
      'lock-timeout',
      `Another run holds the migration lock for ${display}${holder}; lock-timeout is 0, so not waiting. Nothing was changed.`,
    );
  run.log.info(`Waiting up to ${formatDuration(waitMs)} for the migration lock${holder}`);
  const before = await run.session.query<{ lt: string; st: string }>(
    `SELECT current_setting('lock_timeout') AS lt, current_setting('statement_timeout') AS st`,
  );
  try {
    // Only lock_timeout may end this wait, not a statement_timeout the role happens to carry.
    await run.session.query(
      `SELECT set_config('statement_timeout', '0', false), set_config('lock_timeout', $1, false)`,
      [`${Math.round(waitMs)}ms`],
    );
    await run.session.cancellable(run.options.cancelled, () =>
      run.session.query('SELECT pg_advisory_lock($1::bigint)', [run.lockKey]),
    );
  } catch (error) {
    if (run.options.cancelled?.aborted)
      run.fail(
        'cancelled',
        `The run was cancelled while waiting for the migration lock for ${display}${holder}. Nothing was changed.`,
        error,
      );
    if ((error as { code?: string }).code === '55P03')
      run.fail(
        'lock-timeout',
        `Another run held the migration lock for ${display}${await holderText()} for longer than lock-timeout (${formatDuration(waitMs)}). Nothing was changed.`,
        error,
      );
    throw error;
  }
  const { lt, st } = before.rows[0]!;
  const found = await run.session.query<{ columns: string[] }>(
    `SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false), ${columnsSql(3)} AS columns`,
    [lt, st, run.v.history.sql],
  );
  run.locked = true;
  setHistory(run, found.rows[0]!.columns);
  run.log.info('Acquired the migration lock');
}

/** Reads the history rows (after the lock, when the command takes it). */
export async function readHistory(run: Run, locked: boolean): Promise<void> {
  if (!locked) {
    const { rows } = await run.session.query<{ columns: string[] }>(`SELECT ${columnsSql(1)} AS columns`, [
      run.v.history.sql,
    ]);
    setHistory(run, rows[0]!.columns);
  }
  try {
    run.historyRows = run.historyExists ? await readHistoryRows(run.session.client!, run.v.history) : [];
  } catch (error) {
    if (run.lost(error)) throw error;
    // Most often a role without SELECT on a history table another role made: said, not a stack.
    const code = (error as { code?: string }).code;
    throw new PipelineError(
      `Could not read the history table ${run.v.history.display}: ${errorMessage(error)}${code ? ` (SQLSTATE ${code})` : ''}. The role needs SELECT, INSERT, UPDATE and DELETE on it. Nothing was changed.`,
      { cause: error },
    );
  }
}

/** Plans from the history: the rows read ahead while the files were read (once), else read now. */
export async function readPlan(run: Run, locked: boolean): Promise<Plan> {
  if (run.historyReadAhead) run.historyReadAhead = false;
  else await readHistory(run, locked);
  const plan = makePlan(run.v.migrations, run.historyRows, run.v.targetVersion);
  run.rows = plan.rows;
  run.result.drift = plan.drift;
  return plan;
}

/** What to do about each kind of drift, in the refusal. */
const DRIFT_HINT: Record<DriftFinding['kind'], string> = {
  edited:
    'An edited file: restore it as it was applied, and put the change in a new migration instead; or, to fix a release that failed further on (applied here, not in production), revert it here with the file as it was (down), then edit it.',
  missing:
    'A missing file: restore it (its down section is what reverts it, its checksum what verify compares).',
  'out-of-order':
    'A file older than the latest applied one: give it a version above the latest applied, so it applies after it.',
};

function driftLine(d: DriftFinding): string {
  return `  ${d.kind}: ${d.file ?? `version ${d.version} (${d.name})`}: ${d.detail}`;
}

export function failDrift(run: Run, drift: DriftFinding[]): void {
  const { allowed, refused } = judgeDrift(drift, run.v.allowedDrift);
  if (allowed.length > 0) run.logAllowedDrift(allowed.map(driftLine));
  if (refused.length === 0) return;
  const kinds = [...new Set(refused.map((d) => d.kind))];
  run.fail(
    'drift',
    `The migrations on disk do not match the history in ${run.v.history.display}:\n${refused.map(driftLine).join('\n')}\n` +
      `Nothing was changed. ${kinds.map((k) => DRIFT_HINT[k]).join(' ')} Or allow this kind of drift with allow-drift: ${kinds.join(', ')}.`,
  );
}

/** The safety lint of what is about to be applied: refuses (error), reports (warn) or skips (off). */
export function lintPending(run: Run, pending: Migration[]): void {
  const mode = run.options.lint ?? 'warn';
  if (mode === 'off' || pending.length === 0) return;
  for (const p of allowProblems(pending))
    run.log.warning(`${p.file}:${p.line}: -- pipeline:allow ${p.problem}`);
  const findings = lintMigrations(pending, {
    production: run.options.production === true,
    statementLockTimeout: run.options.statementLockTimeoutMs !== undefined,
  });
  run.result.lint = findings;
  const open = findings.filter((f) => !f.acknowledged);
  if (open.length === 0) return;
  const lines = open.map((f) => `  ${f.file}:${f.line} ${f.rule}: ${f.why}. Instead: ${f.instead}.`);
  if (mode === 'warn') {
    run.log.warning(`Migration safety lint:\n${lines.join('\n')}`);
    return;
  }
  run.fail(
    'lint',
    `The migration safety lint found ${open.length} problem(s) in the pending migrations:\n${lines.join('\n')}\n` +
      'Nothing was changed. Fix them, acknowledge one with a line "-- pipeline:allow <rule> <reason>" in its file, or set lint: warn.',
  );
}

export function failBlocked(run: Run, plan: Plan): void {
  if (plan.stuck.length === 0) return;
  const list = plan.stuck
    .map(
      ({ history: h, migration: m }) =>
        `  ${m.file} failed on ${h.appliedAt.toISOString()} outside a transaction: ${h.error ?? 'no error recorded'}`,
    )
    .join('\n');
  run.fail(
    'blocked',
    `Migrations are blocked by a non-transactional migration that failed part-way, so the database may hold part of it:\n${list}\n` +
      'Inspect the database, then either fix the file so it can run again (e.g. DROP INDEX IF EXISTS the invalid index first, ' +
      'CREATE INDEX CONCURRENTLY IF NOT EXISTS) and re-run up, revert it with down, or mark it applied with baseline (target = its version).',
  );
}

export function failBatch(
  run: Run,
  blocker: { file: string } | undefined,
  section: 'up' | 'down',
  changed: boolean,
): void {
  if (!run.options.batch || !blocker) return;
  run.fail(
    'migration-failed',
    `batch cannot include ${section === 'down' ? 'the down section of ' : ''}${blocker.file}: it is marked -- migrate:no-transaction${changed ? '' : '. Nothing was changed.'}`,
  );
}

export async function backup(run: Run): Promise<void> {
  const wanted = run.options.backup;
  if (!wanted) return;
  run.log.info(`Backing up ${describeTarget(run.v.target)} to ${wanted.path} (pg_dump -Fc)`);
  const started = run.clock.now();
  try {
    const path = await dumpDatabase(
      run.v.target,
      wanted.path,
      run.options.pgDumpPath ?? 'pg_dump',
      run.options.env ?? process.env,
      run.options.cancelled,
    );
    run.result.backupPath = path;
    const { rows } = await run.session.query<{ name: string }>(KEPT_EXTENSIONS_SQL);
    run.result.restoreCommand = restoreCommand(
      run.v.target,
      path,
      rows.map((r) => r.name),
    );
    run.log.info(`Backup written in ${formatDuration(run.clock.now() - started)}: ${path}`);
  } catch (error) {
    if (error instanceof BackupCancelled)
      run.fail(
        'cancelled',
        `The run was cancelled during the backup (pg_dump was stopped; ${wanted.path} is incomplete); no migration was applied, nothing was changed, and the lock is released.`,
        error,
      );
    run.fail(
      'backup-failed',
      `The backup before migrating failed, so no migration was applied: ${errorMessage(error)}`,
      error,
    );
  }
}

/**
 * After migrations ran: the run still holds its advisory lock. A migration can let it go
 * (pg_advisory_unlock_all(), DISCARD ALL outside a transaction); then another run may have worked
 * alongside this one, which is said rather than reported as a clean success.
 */
export async function checkStillLocked(run: Run, done: string): Promise<void> {
  if (await run.session.holdsAdvisoryLock(run.lockKey)) return;
  run.fail(
    'lock-lost',
    `A migration of this run released the run's advisory lock for ${run.v.history.display} (pg_advisory_unlock_all() or DISCARD ALL in a migration), so another run could have migrated at the same time. ${done} Check the history before the next run, and take the unlock out of the migration.`,
  );
}

/**
 * The integrity checks, and which NOT VALID constraints are validated: `new` (after up) those this
 * run's migrations left NOT VALID (asked by xmin in each migration's own transaction, so another
 * session's, or one a migration only rebuilt, is not among them), `all` (the drill's scratch copy) every one, `none` (verify, which
 * changes nothing) none, listed instead.
 */
export async function integrity(run: Run, after: string, constraints: 'new' | 'all' | 'none'): Promise<void> {
  const client = run.session.client!;
  if (run.v.checks.length > 0) run.result.checks = await runIntegrityChecks(client, run.v.checks, run.log);
  if (run.options.validateConstraints !== false) {
    const mine = run.ownNotValid;
    // After up, only what its migrations left NOT VALID (still NOT VALID: one may have validated it).
    const found = constraints === 'new' && mine.size === 0 ? [] : await notValidConstraints(client);
    if (constraints === 'none') {
      if (found.length > 0)
        run.log.info(
          `${found.length} constraint(s) are NOT VALID (verify validates none; up validates those its migrations add): ${found.map((c) => `${c.constraint} on ${c.schema}.${c.table}`).join(', ')}`,
        );
    } else {
      const chosen = constraints === 'new' ? found.filter((c) => mine.has(constraintKey(c))) : found;
      run.result.constraints = await validateConstraints(client, chosen, run.log);
    }
  }
  const failedChecks = run.result.checks.filter((c) => !c.passed);
  const failedConstraints = run.result.constraints.filter((c) => !c.validated);
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
  run.fail('checks-failed', `Integrity checks failed ${after}:\n${lines.join('\n')}`);
}
