import { constraintKey, notValidConstraints, OWN_NOT_VALID_SQL, ownNotValidOf } from './checks.ts';
import type { Migration } from './files.ts';
import { deleteSql, type HistoryEntry, type HistoryRow, recordMigration, recordSql } from './history.ts';
import { type Run, SectionError, type Sent } from './run.ts';
import { ScriptError } from './session.ts';
import { hasStatement, splitStatements } from './sql.ts';
import { resetSql } from './steps.ts';
import { MigrationRunError } from './types.ts';

const BEGIN = 'BEGIN;\n';
/** A section may end in a comment or without its semicolon; this closes it either way. */
const CLOSE = '\n;\n';

/** Whether a section's text could add a NOT VALID constraint. */
const mayAddNotValid = (sql: string) => /not\s+valid/i.test(sql);

function entry(run: Run, m: Migration, success: boolean, durationMs = 0, error?: string): HistoryEntry {
  return {
    id: m.id,
    name: m.name,
    checksum: m.checksum,
    durationMs,
    appliedBy: run.options.appliedBy,
    success,
    error,
  };
}

/**
 * A no-transaction section's history row before it runs: failed, naming this run, so a run killed
 * part-way leaves a row that blocks the next and says who left it (golang-migrate's dirty flag).
 */
function markStarted(run: Run, m: Migration, section: 'up' | 'down'): Promise<void> {
  const who = run.options.runLabel ?? run.options.appliedBy ?? 'an earlier run';
  const started = `started by ${who} at ${new Date().toISOString()} and did not finish: it ran outside a transaction, so part of it may be`;
  return recordMigration(
    run.session.client!,
    run.v.history,
    entry(run, m, false, 0, section === 'up' ? `${started} applied` : `down ${started} reverted`),
  );
}

function record(run: Run, m: Migration): string {
  return recordSql(run.v.history, entry(run, m, true), (v) => run.session.escape(v), run.recorded(m.id));
}

const watch = (run: Run) => ({ lockTimeoutMs: run.options.statementLockTimeoutMs });

/**
 * Sends a transactional section and its history change as one message, like dbmate: one round trip
 * per migration. A failure without a position is located by the statements that had completed.
 */
async function runScript(
  run: Run,
  m: Migration,
  sql: string,
  file: string,
  parts: { begin: boolean; after: string; commit: boolean; announce?: string; notValid?: boolean },
): Promise<void> {
  const prefix = parts.begin ? BEGIN : '';
  // The session goes back to its user, role and settings as connected right after the section,
  // inside its transaction: the history row is written as the run's own user (not a role the
  // migration SET), and a migration's SET does not change what the next one does. A section that
  // may add a NOT VALID constraint asks, in its own transaction, which ones that transaction left.
  const own = parts.notValid && mayAddNotValid(sql) ? `\n${OWN_NOT_VALID_SQL};` : '';
  const text = `${prefix}${sql}${CLOSE}${resetSql(run)}${own}\n${parts.after};${parts.commit ? '\nCOMMIT;' : ''}`;
  const sent: Sent = { offset: prefix.length, skip: parts.begin ? 1 : 0 };
  try {
    // The message is on its way when script() returns; the log line (a write to the runner's pipe)
    // is written while the server works instead of before it starts.
    const done = run.session.script(text, watch(run));
    if (parts.announce) run.log.info(parts.announce);
    const results = await done;
    if (own) for (const c of ownNotValidOf(results)) run.ownNotValid.set(constraintKey(c), c);
  } catch (error) {
    throw new SectionError(
      error instanceof ScriptError ? error.cause : error,
      run.describe(error, m, sql, file, sent),
    );
  }
}

/**
 * Outside a transaction (CREATE INDEX CONCURRENTLY and the like): one statement per message, since
 * PostgreSQL runs a multi-statement message as one implicit transaction.
 */
async function runEach(run: Run, m: Migration, sql: string, file: string): Promise<void> {
  for (const statement of splitStatements(sql)) {
    try {
      await run.session.statement(statement.text, watch(run));
    } catch (error) {
      throw new SectionError(error, run.describe(error, m, sql, file, { offset: 0, statement }));
    }
  }
}

/**
 * After losing the session, a new one asks the history what happened, or records a failure, but
 * only when it can take the lock again (no other run has started meanwhile).
 */
async function reconnect(run: Run, lock: boolean): Promise<boolean> {
  try {
    await run.session.close();
    await run.session.connect();
    if (!lock) return true;
    const { rows } = await run.session.query<{ ok: boolean }>(
      'SELECT pg_try_advisory_lock($1::bigint) AS ok',
      [run.lockKey],
    );
    return rows[0]?.ok === true;
  } catch {
    return false;
  }
}

async function committedNow(run: Run, id: string): Promise<boolean | undefined> {
  if (!(await reconnect(run, false))) return undefined;
  try {
    const { rows } = await run.session.query(
      `SELECT 1 FROM ${run.v.history.sql} WHERE version = $1::bigint AND success`,
      [id],
    );
    return rows.length > 0;
  } catch {
    return undefined;
  }
}

/**
 * Between migrations, never inside one: the runner's SIGKILL follows its SIGTERM by seconds, so
 * the run ends at a boundary where the database and the history agree, and the lock goes with
 * the session.
 */
function stopIfCancelled(run: Run, done: number, all: Migration[], verb: 'applied' | 'reverted'): void {
  if (!run.options.cancelled?.aborted) return;
  const rest = all.slice(done).map((m) => (verb === 'reverted' ? (m.downFile ?? m.file) : m.file));
  run.fail(
    'cancelled',
    `The run was cancelled after ${done} of ${all.length} migration(s); ${rest.join(', ')} not ${verb}. ` +
      (done > 0
        ? `The ${done} ${verb} before the cancel stay ${verb} and recorded in ${run.v.history.display}; `
        : 'Nothing was changed; ') +
      'no migration was interrupted, and the lock is released. Run the job again to continue.',
  );
}

export async function applyEach(run: Run, pending: Migration[]): Promise<void> {
  const done: string[] = [];
  for (const m of pending) {
    stopIfCancelled(run, done.length, pending, 'applied');
    const started = run.clock.now();
    if (!hasStatement(m.up))
      run.log.warning(
        `${m.file} has no statements in its up section: it is recorded as applied and runs nothing`,
      );
    try {
      if (m.upTransactional) {
        await runScript(run, m, m.up, m.file, {
          begin: true,
          after: record(run, m),
          commit: true,
          announce: `Applying ${m.file}`,
          notValid: true,
        });
      } else {
        run.log.info(`Applying ${m.file} (no transaction)`);
        // Recorded before it runs, like golang-migrate's dirty flag: a run killed part-way (SIGKILL,
        // a lost runner) leaves a failed row that blocks the next run and names this one, instead
        // of a history that does not show a half-applied migration.
        await markStarted(run, m, 'up');
        const before = mayAddNotValid(m.up) ? await notValidConstraints(run.session.client!) : undefined;
        await runEach(run, m, m.up, m.file);
        await run.session.query(resetSql(run));
        if (before) {
          // Outside a transaction there is no one xid to ask by: what is NOT VALID now and was not before.
          const had = new Set(before.map(constraintKey));
          for (const c of await notValidConstraints(run.session.client!))
            if (!had.has(constraintKey(c))) run.ownNotValid.set(constraintKey(c), c);
        }
        await recordMigration(
          run.session.client!,
          run.v.history,
          entry(run, m, true, run.clock.now() - started),
        );
      }
    } catch (error) {
      await failMigration(run, error, m, done, started);
    }
    const took = run.clock.now() - started;
    run.setState(m.id, 'migrated', took);
    run.result.applied.push(m.id);
    done.push(m.file);
  }
}

async function failMigration(
  run: Run,
  error: unknown,
  m: Migration,
  done: string[],
  started: number,
): Promise<never> {
  const failure = run.failureOf(error, m, m.up, m.file, { offset: 0 });
  const cause = run.causeOf(error);
  const lost = run.lost(cause);
  if (!lost) await run.rollback();
  run.result.failure = failure;
  run.setState(m.id, 'failed');
  const earlier =
    done.length > 0 ? ` The ${done.length} migration(s) before it in this run stay applied.` : '';
  if (m.upTransactional) {
    if (lost) {
      if (await committedNow(run, m.id)) {
        run.setState(m.id, 'migrated');
        run.result.applied.push(m.id);
        run.fail(
          'connection-lost',
          `The connection to PostgreSQL was lost right after ${m.file} committed (${run.errorText(cause)}); it is applied and recorded.${earlier}`,
          cause,
        );
      }
      run.fail(
        'connection-lost',
        `The connection to PostgreSQL was lost while applying ${m.file}: ${run.errorText(cause)}. ` +
          `It ran in a transaction, which PostgreSQL rolls back when the session ends, so the database is as it was before ${m.file} and the history does not list it.${earlier}${run.restoreHint(done.length > 0)}`,
        cause,
      );
    }
    run.fail(
      'migration-failed',
      `${failure.message}\nThe migration ran in a transaction and was rolled back: the database and ${run.v.history.display} are as before it.${earlier}${run.restoreHint(done.length > 0)}`,
      cause,
    );
  }
  // Outside a transaction part of it may have happened: say so in the history, where the next run will see it.
  let recorded = false;
  if (!lost || (await reconnect(run, true))) {
    try {
      // The failure is written as the run's own user, whatever role the statements before it SET.
      if (!lost) await run.session.query(resetSql(run));
      await run.ensureHistory();
      await recordMigration(
        run.session.client!,
        run.v.history,
        entry(run, m, false, run.clock.now() - started, failure.message.slice(0, 2000)),
      );
      recorded = true;
    } catch (recordError) {
      run.log.error(
        `Could not record the failure of ${m.file} in ${run.v.history.display}: ${run.errorText(recordError)}`,
      );
    }
  }
  run.fail(
    lost ? 'connection-lost' : 'migration-failed',
    `${lost ? `The connection to PostgreSQL was lost while applying ${m.file}. ` : ''}${failure.message}\n` +
      `${m.file} runs outside a transaction (no-transaction), so the statements before the failing one stay applied. ` +
      (recorded
        ? `It is recorded as failed in ${run.v.history.display} and blocks further runs until the file is fixed and re-run, reverted with down, or marked with baseline.`
        : 'Its failure could not be recorded; inspect the database before the next run.') +
      earlier +
      run.restoreHint(true),
    cause,
  );
}

class Cancelled extends Error {}

/** All pending migrations in one transaction: one message per migration, COMMIT at the end. */
export async function applyBatch(run: Run, pending: Migration[]): Promise<void> {
  run.log.info(`Applying ${pending.length} migration(s) in one transaction`);
  const timings = new Map<string, number>();
  let current: Migration | undefined;
  try {
    let first = true;
    for (const m of pending) {
      if (run.options.cancelled?.aborted) throw new Cancelled();
      current = m;
      const started = run.clock.now();
      await runScript(run, m, m.up, m.file, {
        begin: first,
        after: record(run, m),
        commit: false,
        notValid: true,
      });
      first = false;
      timings.set(m.id, run.clock.now() - started);
    }
    current = undefined;
    if (run.options.cancelled?.aborted) throw new Cancelled();
    await run.session.query('COMMIT');
  } catch (error) {
    if (error instanceof MigrationRunError) throw error;
    if (error instanceof Cancelled) {
      // ROLLBACK with no transaction open (cancelled before the first message) is only a warning.
      await run.rollback();
      for (const p of pending) if (timings.has(p.id)) run.setState(p.id, 'rolled-back', timings.get(p.id));
      run.fail(
        'cancelled',
        `The run was cancelled after 0 of ${pending.length} migration(s); ${pending.map((m) => m.file).join(', ')} not applied. ` +
          `The batch ran in one transaction and was rolled back before COMMIT: the database and ${run.v.history.display} are as before the run, and the lock is released. Run the job again to apply them.`,
      );
    }
    const cause = run.causeOf(error);
    const lost = run.lost(cause);
    if (!lost) await run.rollback();
    const m = current ?? pending[pending.length - 1]!;
    run.result.failure = run.failureOf(error, m, m.up, m.file, { offset: 0 });
    for (const p of pending) if (timings.has(p.id)) run.setState(p.id, 'rolled-back', timings.get(p.id));
    if (current) run.setState(current.id, 'failed');
    run.fail(
      lost ? 'connection-lost' : 'migration-failed',
      `${lost ? `The connection to PostgreSQL was lost during the batch (${run.errorText(cause)}). ` : ''}${current ? run.result.failure.message : `COMMIT failed: ${run.errorText(cause)}`}\n` +
        `The batch ran in one transaction and was rolled back: none of its ${pending.length} migration(s) is applied, the database and ${run.v.history.display} are as before the run.${run.restoreHint(false)}`,
      cause,
    );
  }
  for (const m of pending) {
    run.setState(m.id, 'migrated', timings.get(m.id));
    run.result.applied.push(m.id);
  }
}

/** Reverts, newest first: each in its own transaction (or outside one), or all in one with batch. */
export async function revert(run: Run, list: { h: HistoryRow; m: Migration }[]): Promise<void> {
  const failWith = (error: unknown, m: Migration, transactional: boolean): never => {
    const file = m.downFile ?? m.file;
    const cause = run.causeOf(error);
    run.result.failure = run.failureOf(error, m, m.down!, file, { offset: 0 });
    run.setState(m.id, 'failed');
    const lost = run.lost(cause);
    return run.fail(
      lost ? 'connection-lost' : 'migration-failed',
      `${lost ? 'The connection to PostgreSQL was lost. ' : ''}${run.result.failure.message}\n` +
        (transactional
          ? `The revert ran in a transaction and was rolled back: ${m.file} stays applied.`
          : `The down section runs outside a transaction; it is recorded as failed in ${run.v.history.display} and blocks further runs until resolved.`) +
        run.restoreHint(!transactional || run.result.reverted.length > 0),
      cause,
    );
  };
  if (run.options.batch) {
    let current: Migration | undefined;
    const took: [string, number][] = [];
    try {
      let first = true;
      for (const { h, m } of list) {
        current = m;
        const started = run.clock.now();
        run.log.info(`Reverting ${m.downFile ?? m.file}`);
        await runScript(run, m, m.down!, m.downFile ?? m.file, {
          begin: first,
          after: deleteSql(run.v.history, h.id),
          commit: false,
        });
        first = false;
        took.push([m.id, run.clock.now() - started]);
      }
      await run.session.query('COMMIT');
    } catch (error) {
      if (error instanceof MigrationRunError) throw error;
      if (!run.lost(run.causeOf(error))) await run.rollback();
      failWith(error, current ?? list[list.length - 1]!.m, true);
    }
    for (const [id, ms] of took) {
      run.setState(id, 'reverted', ms);
      run.result.reverted.push(id);
    }
    return;
  }
  let reverted = 0;
  for (const { h, m } of list) {
    stopIfCancelled(
      run,
      reverted++,
      list.map(({ m }) => m),
      'reverted',
    );
    const file = m.downFile ?? m.file;
    const started = run.clock.now();
    run.log.info(`Reverting ${file}`);
    if (m.downTransactional) {
      try {
        await runScript(run, m, m.down!, file, {
          begin: true,
          after: deleteSql(run.v.history, h.id),
          commit: true,
        });
      } catch (error) {
        if (!run.lost(run.causeOf(error))) await run.rollback();
        failWith(error, m, true);
      }
    } else {
      try {
        // Marked before it runs, as up marks a no-transaction migration: a run killed part-way
        // leaves a failed row that blocks up and names this run, and down can run it again.
        await markStarted(run, m, 'down');
        await runEach(run, m, m.down!, file);
        // Apart: in one message the DELETE would run in a transaction begun under whatever the
        // section SET (default_transaction_read_only), before the reset took effect.
        await run.session.query(resetSql(run));
        await run.session.query(deleteSql(run.v.history, h.id));
      } catch (error) {
        const failure = run.failureOf(error, m, m.down!, file, { offset: 0 });
        const lost = run.lost(run.causeOf(error));
        if (!lost) await run.session.query(resetSql(run)).catch(() => {});
        if (!lost || (await reconnect(run, true)))
          await recordMigration(
            run.session.client!,
            run.v.history,
            entry(run, m, false, run.clock.now() - started, `down: ${failure.message}`.slice(0, 2000)),
          ).catch(() => {});
        failWith(new SectionError(run.causeOf(error), failure), m, false);
      }
    }
    const ms = run.clock.now() - started;
    run.setState(m.id, 'reverted', ms);
    run.result.reverted.push(m.id);
  }
}
