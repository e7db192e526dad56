import { errorMessage, formatDuration, InputError } from '../core/index.ts';
import { applyBatch, applyEach, revert } from './apply.ts';
import { dumpDatabase } from './backup.ts';
import { runIntegrityChecks, validatePendingConstraints } from './checks.ts';
import { describeTarget, resolveConnection, SSL_MODES } from './connection.ts';
import { loadChecks, loadMigrations, type Migration } from './files.ts';
import {
  checkHistoryColumns,
  historyTable,
  IncompatibleHistoryError,
  readHistoryRows,
  recordMigration,
} from './history.ts';
import { lintMigrations } from './lint.ts';
import { batchBlocker, chooseReverts, judgeDrift, makePlan, type Plan } from './plan.ts';
import { checkArchive, restoreCommand, restoreDatabase, restoreInto } from './restore.ts';
import { Run, type Validated } from './run.ts';
import { APPLICATION_NAME, applicationNameFor, describeHolder, Session } from './session.ts';
import {
  DRIFT_KINDS,
  type DriftFinding,
  type DriftKind,
  MIGRATE_COMMANDS,
  type MigrationResult,
  MigrationRunError,
  type RunMigrationsOptions,
} from './types.ts';

export { APPLICATION_NAME };

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
    if (command === 'status' || command === 'verify' || command === 'restore' || command === 'verify-backup')
      throw new InputError('target', `is set for ${command}`, 'target only with plan, up, down and baseline');
    targetVersion = BigInt(text);
  }
  if (options.backup && !options.backup.path.trim())
    throw new InputError('backup-path', 'is empty', 'a file path for the pg_dump archive');
  const allowedDrift: readonly DriftKind[] =
    options.allowDrift === true
      ? DRIFT_KINDS
      : options.allowDrift === false
        ? []
        : (options.allowDrift ?? []);

  const history = historyTable(options.schema, options.table);
  const target = resolveConnection({
    databaseUrl: options.databaseUrl,
    sslmode: options.sslmode,
    sslRootCert: options.sslRootCert,
    env: options.env ?? process.env,
    logger: options.logger,
  });
  if (command === 'verify-backup' && !options.restore?.path.trim())
    throw new InputError(
      'backup-path',
      'is empty',
      'the path of the pg_dump archive to drill (the backup-path output of the run that took it)',
    );
  if (command === 'restore') {
    const restore = options.restore;
    if (!restore?.path.trim())
      throw new InputError(
        'backup-path',
        'is empty',
        'the path of the pg_dump archive to restore (the backup-path output of the run that took it)',
      );
    if (restore.confirm !== target.database)
      throw new InputError(
        'confirm-restore',
        restore.confirm
          ? `has ${JSON.stringify(restore.confirm)}, which is not the name of the database to restore`
          : 'is empty',
        `the database's name, ${JSON.stringify(target.database)}, typed out: restore replaces everything in it with the backup`,
      );
  }
  const [migrations, checks] = await Promise.all([
    command === 'restore' ? Promise.resolve([]) : loadMigrations(options.dir),
    options.checksDir && command !== 'restore' ? loadChecks(options.checksDir) : Promise.resolve([]),
  ]);

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
  return { history, target, migrations, checks, targetVersion, steps: options.steps, allowedDrift };
}

/** Session settings for migration statements, in one round trip, only when there are any. */
async function applySettings(run: Run): Promise<void> {
  const settings: [string, string][] = [];
  if (run.options.statementLockTimeoutMs !== undefined)
    settings.push(['lock_timeout', `${Math.round(run.options.statementLockTimeoutMs)}ms`]);
  if (run.options.statementTimeoutMs !== undefined)
    settings.push(['statement_timeout', `${Math.round(run.options.statementTimeoutMs)}ms`]);
  if (settings.length === 0) return;
  await run.session.query(
    `SELECT ${settings.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, false)`).join(', ')}`,
    settings.flat(),
  );
}

function setHistory(run: Run, columns: string[]): void {
  try {
    run.historyExists = checkHistoryColumns(run.v.history, columns);
  } catch (error) {
    if (error instanceof IncompatibleHistoryError) run.fail('incompatible-table', error.message, error);
    throw error;
  }
}

/** The history table's columns (none: no table), with its schema and name as parameters $a and $b. */
const columnsSql = (a: number, b: number) =>
  `ARRAY(SELECT column_name::text FROM information_schema.columns WHERE table_schema = $${a} AND table_name = $${b})`;

/**
 * Takes the advisory lock on the run's own session (and, in the same round trip, finds the history
 * table), waiting up to lock-timeout for another run and naming it. The history is read after.
 */
async function lock(run: Run): Promise<void> {
  const { schema, table, display } = run.v.history;
  const tried = await run.session.query<{ ok: boolean; columns: string[] }>(
    `SELECT pg_try_advisory_lock($1::bigint) AS ok, ${columnsSql(2, 3)} AS columns`,
    [run.lockKey, schema, table],
  );
  if (tried.rows[0]?.ok) return setHistory(run, tried.rows[0].columns);
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
    await run.session.query('SELECT pg_advisory_lock($1::bigint)', [run.lockKey]);
  } catch (error) {
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
    `SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false), ${columnsSql(3, 4)} AS columns`,
    [lt, st, schema, table],
  );
  setHistory(run, found.rows[0]!.columns);
  run.log.info('Acquired the migration lock');
}

/** Reads the history (after the lock, when the command takes it) and plans from it. */
async function readPlan(run: Run, locked: boolean): Promise<Plan> {
  if (!locked) {
    const { rows } = await run.session.query<{ columns: string[] }>(`SELECT ${columnsSql(1, 2)} AS columns`, [
      run.v.history.schema,
      run.v.history.table,
    ]);
    setHistory(run, rows[0]!.columns);
  }
  run.historyRows = run.historyExists ? await readHistoryRows(run.session.client!, run.v.history) : [];
  const plan = makePlan(run.v.migrations, run.historyRows, run.v.targetVersion);
  run.rows = plan.rows;
  run.result.drift = plan.drift;
  return plan;
}

function driftLine(d: DriftFinding): string {
  return `  ${d.kind}: ${d.file ?? `version ${d.version} (${d.name})`}: ${d.detail}`;
}

function failDrift(run: Run, drift: DriftFinding[]): void {
  const { allowed, refused } = judgeDrift(drift, run.v.allowedDrift);
  if (allowed.length > 0) run.logAllowedDrift(allowed.map(driftLine));
  if (refused.length === 0) return;
  const kinds = [...new Set(refused.map((d) => d.kind))].join(', ');
  run.fail(
    'drift',
    `The migrations on disk do not match the history in ${run.v.history.display}:\n${refused.map(driftLine).join('\n')}\n` +
      `Nothing was changed. Restore the files as applied (add a new migration instead of editing one), or allow this kind of drift with allow-drift: ${kinds}.`,
  );
}

/** The safety lint of what is about to be applied: refuses (error), reports (warn) or skips (off). */
function lintPending(run: Run, pending: Migration[]): void {
  const mode = run.options.lint ?? 'warn';
  if (mode === 'off' || pending.length === 0) return;
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

function failBlocked(run: Run, plan: Plan): void {
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

function failBatch(
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

async function backup(run: Run): Promise<void> {
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
    );
    run.result.backupPath = path;
    run.result.restoreCommand = restoreCommand(run.v.target, path);
    run.log.info(`Backup written in ${formatDuration(run.clock.now() - started)}: ${path}`);
  } catch (error) {
    run.fail(
      'backup-failed',
      `The backup before migrating failed, so no migration was applied: ${errorMessage(error)}`,
      error,
    );
  }
}

async function integrity(run: Run, after: string): Promise<void> {
  const client = run.session.client!;
  if (run.v.checks.length > 0) run.result.checks = await runIntegrityChecks(client, run.v.checks, run.log);
  if (run.options.validateConstraints !== false)
    run.result.constraints = await validatePendingConstraints(client, run.log);
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

/**
 * Runs one migration command against PostgreSQL. Everything the caller can get wrong (inputs, file
 * names, duplicate versions, sections, the URL, reachability) fails before the first change with an
 * InputError or DatabaseConnectionError; failures after that throw MigrationRunError carrying the
 * partial result for the job summary.
 */
export async function runMigrations(options: RunMigrationsOptions): Promise<MigrationResult> {
  const v = await validate(options);
  const tools = {
    pgRestorePath: options.pgRestorePath ?? 'pg_restore',
    psqlPath: options.psqlPath ?? 'psql',
    env: options.env ?? process.env,
  };
  const archive =
    options.command === 'restore' || options.command === 'verify-backup'
      ? await checkArchive(options.restore!.path, tools)
      : undefined;
  const session = new Session(v.target, applicationNameFor(options.runLabel), options.logger);
  const run = new Run(options, v, session);
  const started = run.clock.now();
  try {
    await session.connect();
    await applySettings(run);
    const command = options.command;
    if (command === 'restore') await restore(run, archive!, tools);
    else if (command === 'verify-backup') await verifyBackup(run, archive!, tools);
    else await commands[command](run);
    run.finish();
    return run.result;
  } finally {
    run.result.durationMs = run.clock.now() - started;
    await session.close();
  }
}

async function restore(
  run: Run,
  archive: string,
  tools: { pgRestorePath: string; psqlPath: string; env: NodeJS.ProcessEnv },
): Promise<void> {
  await lock(run);
  run.result.restoreCommand = restoreCommand(run.v.target, archive);
  run.log.info(
    `Restoring ${describeTarget(run.v.target)} from ${archive}: every schema emptied, then the backup replayed, in one transaction`,
  );
  const started = run.clock.now();
  try {
    await restoreDatabase(run.v.target, archive, { ...tools, env: run.options.env ?? process.env });
  } catch (error) {
    run.fail(
      'restore-failed',
      `The restore from ${archive} failed and was rolled back, so the database is as it was before it: ${errorMessage(error)}`,
      error,
    );
  }
  run.result.restoredFrom = archive;
  // restore reads no migration files: the history as restored is the whole story.
  await readPlan(run, false);
  run.result.drift = [];
  for (const row of run.rows.values()) if (row.state === 'missing') row.state = 'applied';
  run.log.info(`Restored in ${formatDuration(run.clock.now() - started)}`);
}

/** A name for the drill's copy: the database's, a stamp, within PostgreSQL's 63 bytes. */
function scratchName(database: string, now: number): string {
  const stamp = new Date(now).toISOString().replace(/\D/g, '').slice(0, 14);
  const base = database.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 63 - 'verify'.length - stamp.length - 2);
  return `${base}_verify_${stamp}`;
}

/**
 * The disaster-recovery drill: the backup restored into a scratch database on the same server, its
 * integrity checks and NOT VALID constraints run there, its history compared with the files and
 * with the live database, and the scratch database dropped whatever happened. The live database is
 * only read.
 */
async function verifyBackup(
  run: Run,
  archive: string,
  tools: { pgRestorePath: string; psqlPath: string; env: NodeJS.ProcessEnv },
): Promise<void> {
  await readPlan(run, false);
  const live = [...run.historyRows].filter((h) => h.success);
  const scratch = scratchName(run.v.target.database, run.clock.now());
  const ident = `"${scratch.replace(/"/g, '""')}"`;
  try {
    await run.session.query(`CREATE DATABASE ${ident}`);
  } catch (error) {
    run.fail(
      'restore-failed',
      `Could not create the scratch database ${scratch} for the drill (the role needs CREATEDB): ${errorMessage(error)}. Nothing was changed.`,
      error,
    );
  }
  const check = {
    file: archive,
    scratchDatabase: scratch,
    tables: 0,
    version: undefined as string | undefined,
    liveVersion: live.at(-1)?.id,
    appliedSinceBackup: [] as string[],
    dropped: false,
  };
  run.result.backupCheck = check;
  const copy = new Session({ ...run.v.target, database: scratch }, run.session.applicationName, run.log);
  try {
    run.log.info(`Restoring ${archive} into the scratch database ${scratch}`);
    try {
      await restoreInto(run.v.target, scratch, archive, { ...tools, env: run.options.env ?? process.env });
    } catch (error) {
      run.fail(
        'restore-failed',
        `The backup ${archive} did not restore into ${scratch}: ${errorMessage(error)}`,
        error,
      );
    }
    await copy.connect();
    const { rows } = await copy.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`,
    );
    check.tables = rows[0]?.n ?? 0;
    // From here the run reads the copy: its history, checks and constraints are the backup's.
    const liveSession = run.session;
    run.session = copy;
    try {
      const plan = await readPlan(run, false);
      const inBackup = new Set(run.historyRows.filter((h) => h.success).map((h) => h.id));
      check.version = run.historyRows.filter((h) => h.success).at(-1)?.id;
      check.appliedSinceBackup = live.filter((h) => !inBackup.has(h.id)).map((h) => h.id);
      run.log.info(
        `The backup holds ${check.tables} table(s) and its history is at version ${check.version ?? 'none'}; the live database is at ${check.liveVersion ?? 'none'}`,
      );
      failBlocked(run, plan);
      failDrift(run, plan.drift);
      await integrity(run, `on the backup restored into ${scratch}`);
    } finally {
      run.session = liveSession;
    }
  } finally {
    await copy.close();
    try {
      await run.session.query(`DROP DATABASE IF EXISTS ${ident} WITH (FORCE)`);
      check.dropped = true;
      run.log.info(`Dropped the scratch database ${scratch}`);
    } catch (error) {
      run.log.error(
        `Could not drop the scratch database ${scratch}: ${errorMessage(error)}; drop it by hand`,
      );
    }
  }
}

const commands: Record<
  Exclude<RunMigrationsOptions['command'], 'restore' | 'verify-backup'>,
  (run: Run) => Promise<void>
> = {
  async status(run) {
    await readPlan(run, false);
  },

  async plan(run) {
    const plan = await readPlan(run, false);
    const stuck = new Set(plan.stuck.map((s) => s.migration.id));
    for (const m of plan.pending) {
      if (stuck.has(m.id)) continue;
      const row = run.rows.get(m.id)!;
      row.state = 'planned';
      row.sql = m.up.trim();
    }
    failBlocked(run, plan);
    failDrift(run, plan.drift);
    failBatch(run, batchBlocker(plan.pending, 'up'), 'up', true);
    lintPending(
      run,
      plan.pending.filter((m) => !stuck.has(m.id)),
    );
  },

  async up(run) {
    await lock(run);
    const plan = await readPlan(run, true); // after the lock: whatever another run applied meanwhile is now visible
    failBlocked(run, plan);
    failDrift(run, plan.drift);
    const pending = plan.pending;
    if (pending.length === 0) {
      run.log.info(`Nothing to apply: ${run.v.history.display} is up to date`);
    } else {
      failBatch(run, batchBlocker(pending, 'up'), 'up', false);
      lintPending(run, pending);
      await backup(run);
      await run.ensureHistory();
      if (run.options.batch) await applyBatch(run, pending);
      else await applyEach(run, pending);
    }
    await integrity(run, `after applying ${run.result.applied.length} migration(s), which stay applied`);
  },

  async down(run) {
    await lock(run);
    const plan = await readPlan(run, true);
    const files = new Map(run.v.migrations.map((m) => [m.id, m]));
    const chosen = chooseReverts(run.historyRows, run.v.targetVersion, run.v.steps);
    if (chosen.length === 0) {
      run.log.info('Nothing to revert');
      return;
    }
    const missing = chosen.find((h) => !files.has(h.id));
    if (missing)
      run.fail(
        'not-reversible',
        `Cannot revert version ${missing.id} (${missing.name}): no file has that version. Nothing was changed.`,
      );
    failDrift(
      run,
      plan.drift.filter((d) => d.kind !== 'out-of-order' && chosen.some((h) => h.id === d.version)),
    );
    const list = chosen.map((h) => ({ h, m: files.get(h.id)! }));
    const irreversible = list.find(({ m }) => m.down === undefined);
    if (irreversible)
      run.fail(
        'not-reversible',
        `Cannot revert ${irreversible.m.file}: it has no down section. Nothing was changed.`,
      );
    failBatch(
      run,
      batchBlocker(
        list.map(({ m }) => m),
        'down',
      ),
      'down',
      false,
    );
    await backup(run);
    await revert(run, list);
  },

  async verify(run) {
    await lock(run);
    const plan = await readPlan(run, true);
    await integrity(run, 'on verify').catch((error: unknown) => {
      if (!(error instanceof MigrationRunError)) throw error;
      failBlocked(run, plan);
      failDrift(run, plan.drift);
      throw error;
    });
    failBlocked(run, plan);
    failDrift(run, plan.drift);
  },

  async baseline(run) {
    await lock(run);
    await readPlan(run, true);
    const target = run.v.targetVersion ?? run.v.migrations[run.v.migrations.length - 1]?.version;
    if (target === undefined) {
      run.log.info('No migration files: nothing to baseline');
      return;
    }
    const recorded = new Map(run.historyRows.map((h) => [h.id, h]));
    const marks = run.v.migrations.filter((m) => m.version <= target && !recorded.get(m.id)?.success);
    await run.ensureHistory();
    await run.session.query('BEGIN');
    try {
      for (const m of marks) {
        await recordMigration(run.session.client!, run.v.history, {
          id: m.id,
          name: m.name,
          checksum: m.checksum,
          durationMs: 0,
          appliedBy: `${run.options.appliedBy ?? 'unknown'} (baseline: marked applied without running)`,
          success: true,
        });
      }
      await run.session.query('COMMIT');
    } catch (error) {
      await run.rollback();
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
