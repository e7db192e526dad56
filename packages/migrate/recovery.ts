import { errorMessage, formatDuration } from '../core/index.ts';
import { describeTarget } from './connection.ts';
import { KEPT_EXTENSIONS_SQL, RESET_SQL, restoreCommand, restoreDatabase, restoreInto } from './restore.ts';
import type { Run } from './run.ts';
import { Session } from './session.ts';
import { failBlocked, failDrift, integrity, lock, readPlan } from './steps.ts';

type Tools = { pgRestorePath: string; psqlPath: string; env: NodeJS.ProcessEnv };

// restore and verify-backup: the two commands that read a backup instead of migration files.

export async function restore(run: Run, archive: string, tools: Tools): Promise<void> {
  await lock(run);
  const kept = await keptExtensions(run);
  run.result.restoreCommand = restoreCommand(run.v.target, archive, kept);
  if (kept.length > 0)
    run.log.info(`Keeping the extension(s) ${kept.join(', ')}: another role (a superuser) owns them`);
  run.log.info(
    `Restoring ${describeTarget(run.v.target)} from ${archive}: every schema emptied, then the backup replayed, in one transaction`,
  );
  const started = run.clock.now();
  try {
    await restoreDatabase(run.v.target, archive, { ...tools, env: run.options.env ?? process.env }, kept);
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

async function keptExtensions(run: Run): Promise<string[]> {
  const { rows } = await run.session.query<{ name: string }>(KEPT_EXTENSIONS_SQL);
  return rows.map((r) => r.name);
}

/**
 * restore's reset step run on the live database and rolled back, so the drill fails where restore
 * would (a drop the role may not make). It takes the locks a restore takes, briefly; lock_timeout
 * keeps it from queueing behind traffic.
 */
async function rehearseReset(run: Run): Promise<void> {
  await run.session.query('BEGIN');
  try {
    await run.session.query(`SET LOCAL lock_timeout = '5s'`);
    await run.session.query(RESET_SQL);
  } catch (error) {
    run.fail(
      'restore-failed',
      `restore's reset step would fail on the live database (rehearsed and rolled back, nothing changed): ${errorMessage(error)}`,
      error,
    );
  } finally {
    await run.session.query('ROLLBACK');
  }
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
export async function verifyBackup(run: Run, archive: string, tools: Tools): Promise<void> {
  const livePlan = await readPlan(run, false);
  const live = [...run.historyRows].filter((h) => h.success);
  run.live = { currentVersion: live.at(-1)?.id, pending: livePlan.pending.map((m) => m.id) };
  await rehearseReset(run);
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
      await integrity(run, `on the backup restored into ${scratch}`, 'all');
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
