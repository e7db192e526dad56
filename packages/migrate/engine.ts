import { resolve } from 'node:path';
import { errorMessage, InputError } from '../core/index.ts';
import { applyBatch, applyEach, revert } from './apply.ts';
import { resolveConnection, SSL_MODES } from './connection.ts';
import { loadChecks, loadMigrations, MIGRATION_FILE_FORM } from './files.ts';
import { historyTable, recordMigration } from './history.ts';
import { batchBlocker, chooseReverts } from './plan.ts';
import { restore, verifyBackup } from './recovery.ts';
import { checkArchive } from './restore.ts';
import { Run, type Validated } from './run.ts';
import { APPLICATION_NAME, applicationNameFor, Session } from './session.ts';
import {
  applySettings,
  backup,
  checkStillLocked,
  failBatch,
  failBlocked,
  failDrift,
  integrity,
  lintPending,
  lock,
  readHistory,
  readPlan,
  tryLock,
} from './steps.ts';
import {
  DRIFT_KINDS,
  type DriftKind,
  MIGRATE_COMMANDS,
  type MigrationResult,
  MigrationRunError,
  type RunMigrationsOptions,
} from './types.ts';

export { APPLICATION_NAME };

/** Every input checked before anything else happens; the files are read next (readFiles). */
function checkInputs(options: RunMigrationsOptions): Validated {
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
  return {
    history,
    target,
    migrations: [],
    checks: [],
    targetVersion,
    steps: options.steps,
    allowedDrift,
  };
}

/** Reads and checks the migration and check files into `v`, before anything is changed. */
async function readFiles(options: RunMigrationsOptions, v: Validated): Promise<void> {
  const command = options.command;
  const targetVersion = v.targetVersion;
  const warn = (message: string) => options.logger.warning(message);
  const [migrations, checks] = await Promise.all([
    // restore does not need the files, and a broken directory must not hold up the rollback; it
    // reads them only to report what is pending on the restored database.
    command === 'restore'
      ? loadMigrations(options.dir, { warn }).catch((error: unknown) => {
          options.logger.warning(
            `Could not read the migration files (${errorMessage(error)}); the result lists no pending migrations`,
          );
          return [];
        })
      : loadMigrations(options.dir, { warn }),
    options.checksDir && command !== 'restore'
      ? loadChecks(options.checksDir, { warn })
      : Promise.resolve([]),
  ]);

  // A wrong path (or a directory of everything but migrations) must not pass as "up to date":
  // production would never be migrated. restore needs no files.
  if (migrations.length === 0 && command !== 'restore')
    throw new InputError(
      'dir',
      `names ${JSON.stringify(options.dir)} (${resolve(options.dir)}), which holds no migration files`,
      `a directory of migration files: ${MIGRATION_FILE_FORM}`,
    );
  // down too: a typo in the version (a digit short) would otherwise revert everything above it.
  // 0 is the documented "revert all".
  if (
    targetVersion !== undefined &&
    !(command === 'down' && targetVersion === 0n) &&
    !migrations.some((m) => m.version === targetVersion)
  )
    throw new InputError(
      'target',
      `has ${targetVersion}, which is not the version of a migration file`,
      command === 'down'
        ? 'the version of a file in the migrations directory, or 0 to revert all'
        : 'the version of a file in the migrations directory',
    );
  if (options.checksDir && command !== 'restore' && checks.length === 0)
    options.logger.warning(
      `checks-dir ${JSON.stringify(options.checksDir)} holds no .sql files: no integrity checks run`,
    );
  v.migrations = migrations;
  v.checks = checks;
}

/** The commands that take the advisory lock before reading the history. */
const LOCKING: readonly RunMigrationsOptions['command'][] = ['up', 'down', 'verify', 'baseline'];

/**
 * Opens the session while the files are read: connect, settings, one try of the lock and the
 * history rows, so a re-run's round trips overlap reading hundreds of files. Nothing is changed
 * here; waiting for a lock another run holds comes after the files, so a broken file is reported
 * at once rather than after lock-timeout.
 */
async function open(run: Run): Promise<void> {
  await run.session.connect();
  await applySettings(run);
  const locks = LOCKING.includes(run.options.command);
  if (locks && !(await tryLock(run))) return;
  await readHistory(run, locks);
  run.historyReadAhead = true;
}

const closing = new Set<Promise<void>>();

/** Resolves when every session left closing by a closeInBackground run has ended. */
export async function sessionsClosed(): Promise<void> {
  await Promise.all(closing);
}

/** Ends the session, now or (closeInBackground) after returning; it never throws. */
async function endSession(options: RunMigrationsOptions, session: Session): Promise<void> {
  const done = session.close();
  if (!options.closeInBackground) return done;
  closing.add(done);
  void done.finally(() => closing.delete(done));
}

/**
 * Runs one migration command against PostgreSQL. Everything the caller can get wrong (inputs, file
 * names, duplicate versions, sections, the URL, reachability) fails before the first change with an
 * InputError or DatabaseConnectionError; failures after that throw MigrationRunError carrying the
 * partial result for the job summary.
 */
export async function runMigrations(options: RunMigrationsOptions): Promise<MigrationResult> {
  const v = checkInputs(options);
  const command = options.command;
  const session = new Session(v.target, applicationNameFor(options.runLabel), options.logger);
  const run = new Run(options, v, session);
  const started = run.clock.now();
  if (command === 'restore' || command === 'verify-backup') {
    const tools = {
      pgRestorePath: options.pgRestorePath ?? 'pg_restore',
      psqlPath: options.psqlPath ?? 'psql',
      env: options.env ?? process.env,
    };
    await readFiles(options, v);
    const archive = await checkArchive(options.restore!.path, tools);
    try {
      await session.connect();
      await applySettings(run);
      if (command === 'restore') await restore(run, archive, tools);
      else await verifyBackup(run, archive, tools);
      run.finish();
      return run.result;
    } finally {
      run.result.durationMs = run.clock.now() - started;
      await endSession(options, session);
    }
  }
  const opening = open(run);
  // Observed here so a failure to connect waits, unreported, for the files' verdict.
  opening.catch(() => {});
  try {
    await readFiles(options, v);
  } catch (error) {
    // A broken file is the first thing to fix: report it, not what the connection did meanwhile.
    void opening.finally(() => session.close()).catch(() => {});
    throw error;
  }
  try {
    await opening;
    await commands[command](run);
    run.finish();
    return run.result;
  } finally {
    run.result.durationMs = run.clock.now() - started;
    await endSession(options, session);
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
      await checkStillLocked(
        run,
        `The ${run.result.applied.length} migration(s) applied stay applied and recorded.`,
      );
    }
    await integrity(
      run,
      `after applying ${run.result.applied.length} migration(s), which stay applied`,
      'new',
    );
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
    if (run.v.steps !== undefined && chosen.length < run.v.steps)
      run.log.info(
        `steps is ${run.v.steps}, but only ${chosen.length} migration(s) are applied: reverting all ${chosen.length}`,
      );
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
    await checkStillLocked(run, `The ${run.result.reverted.length} migration(s) reverted stay reverted.`);
  },

  async verify(run) {
    await lock(run);
    const plan = await readPlan(run, true);
    await integrity(run, 'on verify', 'none').catch((error: unknown) => {
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
    // readFiles refused a directory without migration files.
    const target = run.v.targetVersion ?? run.v.migrations[run.v.migrations.length - 1]!.version;
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
