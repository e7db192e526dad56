import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { errorMessage, InputError, PipelineError } from '../core/index.ts';
import { ToolNotFound } from './backup.ts';
import { type ConnectionTarget, libpqEnv } from './connection.ts';

/**
 * What `pg_restore --clean` cannot do: drop what the dump does not hold. A migration that ran after
 * the backup may have created schemas, types, tables, functions, extensions, event triggers; they
 * must go, or the next `up` fails on "already exists". So before the dump is replayed (in the same
 * transaction): event triggers, publications and extensions go, every schema but public is dropped
 * with all it holds, and public (which pg_dump never recreates) is emptied object by object.
 * Like pg_restore --clean run by a database owner who is not a superuser, a drop the role is not
 * allowed (an extension a superuser installed, a table another role owns) is skipped with a notice
 * instead of failing the restore: if the dump recreates such an object its CREATE then fails and
 * the whole transaction rolls back; extensions are the exception (see keptExtensions).
 * No single quotes, so the printed command needs no escaping beyond one pair of them.
 */
export const RESET_SQL = `DO $reset$
DECLARE
  item record;
BEGIN
  FOR item IN SELECT evtname AS name FROM pg_event_trigger LOOP
    BEGIN
      EXECUTE format($q$DROP EVENT TRIGGER IF EXISTS %I CASCADE$q$, item.name);
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE NOTICE $q$skipped (not the owner): %$q$, SQLERRM;
    END;
  END LOOP;
  FOR item IN SELECT pubname AS name FROM pg_publication LOOP
    BEGIN
      EXECUTE format($q$DROP PUBLICATION IF EXISTS %I$q$, item.name);
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE NOTICE $q$skipped (not the owner): %$q$, SQLERRM;
    END;
  END LOOP;
  FOR item IN SELECT extname AS name FROM pg_extension WHERE extname <> $q$plpgsql$q$ LOOP
    BEGIN
      EXECUTE format($q$DROP EXTENSION IF EXISTS %I CASCADE$q$, item.name);
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE NOTICE $q$skipped (not the owner): %$q$, SQLERRM;
    END;
  END LOOP;
  FOR item IN SELECT nspname AS name FROM pg_namespace
      WHERE nspname !~ $q$^pg_$q$ AND nspname NOT IN ($q$information_schema$q$, $q$public$q$) LOOP
    BEGIN
      EXECUTE format($q$DROP SCHEMA IF EXISTS %I CASCADE$q$, item.name);
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE NOTICE $q$skipped (not the owner): %$q$, SQLERRM;
    END;
  END LOOP;
  FOR item IN SELECT unnest(ARRAY(
      SELECT $q$DROP $q$ || CASE
               WHEN d.classid = $q$pg_type$q$::regclass
                AND (SELECT typtype FROM pg_type WHERE oid = d.objid) = $q$d$q$ THEN $q$DOMAIN$q$
               WHEN o.type = $q$statistics object$q$ THEN $q$STATISTICS$q$
               ELSE upper(o.type)
             END || $q$ IF EXISTS $q$ || o.identity || $q$ CASCADE$q$
        FROM pg_depend d CROSS JOIN LATERAL pg_identify_object(d.classid, d.objid, d.objsubid) o
       WHERE d.refclassid = $q$pg_namespace$q$::regclass AND d.deptype = $q$n$q$
         AND d.refobjid = (SELECT oid FROM pg_namespace WHERE nspname = $q$public$q$)
         AND NOT EXISTS (SELECT 1 FROM pg_depend e
                          WHERE e.classid = d.classid AND e.objid = d.objid AND e.deptype = $q$e$q$))) AS statement LOOP
    BEGIN
      EXECUTE item.statement;
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE NOTICE $q$skipped (not the owner): %$q$, SQLERRM;
    END;
  END LOOP;
  PERFORM lo_unlink(oid) FROM pg_largeobject_metadata WHERE pg_has_role(lomowner, $q$MEMBER$q$);
END
$reset$`;

function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

function psqlArgs(target: ConnectionTarget): string[] {
  return [
    '--no-psqlrc',
    '--quiet',
    '--set=ON_ERROR_STOP=1',
    '--single-transaction',
    `--host=${target.host}`,
    `--port=${target.port}`,
    `--username=${target.user}`,
    `--dbname=${target.database}`,
    `--command=${RESET_SQL.replace(/\s+/g, ' ')}`,
    '--file=-',
  ];
}

/**
 * Extensions the restoring role may not drop (a superuser installed them) stay in place through
 * the reset, so the dump's own entries for them are left out: its CREATE EXTENSION IF NOT EXISTS
 * would be a no-op, but its COMMENT ON EXTENSION fails for anyone but the owner.
 */
export const KEPT_EXTENSIONS_SQL = `SELECT extname AS name FROM pg_extension
  WHERE extname <> 'plpgsql' AND NOT pg_has_role(extowner, 'MEMBER') ORDER BY 1`;

/** The pg_restore --list entries of `kept` extensions (the extension and its comment). */
function keptEntry(kept: readonly string[]): RegExp {
  const names = kept.map((k) => k.replace(/[^A-Za-z0-9_]/g, (c) => `\\${c}`)).join('|');
  return new RegExp(` (?:EXTENSION - |COMMENT - EXTENSION )(?:${names})(?: |$)`);
}

/**
 * The shell command that returns the database to the backup exactly, and what the restore command
 * runs: pg_restore turns the archive into SQL, psql runs the reset and that SQL in one transaction
 * (any error rolls all of it back). No password: both read PGPASSWORD like the run did.
 */
export function restoreCommand(target: ConnectionTarget, path: string, kept: readonly string[] = []): string {
  const psql = ['psql', ...psqlArgs(target)].map(shellQuote).join(' ');
  if (kept.length === 0) return `${['pg_restore', '--file=-', path].map(shellQuote).join(' ')} | ${psql}`;
  const list = ['pg_restore', '--list', path].map(shellQuote).join(' ');
  const filter = ['grep', '-v', '-E', keptEntry(kept).source].map(shellQuote).join(' ');
  const restore = ['pg_restore', '--use-list=/dev/stdin', '--file=-', path].map(shellQuote).join(' ');
  return `${list} | ${filter} | ${restore} | ${psql}`;
}

export interface RestoreTools {
  pgRestorePath: string;
  psqlPath: string;
  env: NodeJS.ProcessEnv;
}

function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  secret: string | undefined,
  stdin?: NodeJS.ReadableStream,
): { stdout: NodeJS.ReadableStream; done: Promise<void> } {
  // Loaded on first use, as in backup.ts: only restores spawn anything.
  const { spawn } = process.getBuiltinModule('node:child_process');
  const child = spawn(command, args, { env, stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  if (stdin) stdin.pipe(child.stdin!);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const done = new Promise<void>((ok, fail) => {
    child.on('error', (error) =>
      fail(
        (error as { code?: unknown }).code === 'ENOENT'
          ? new ToolNotFound(command)
          : new Error(`${command}: ${errorMessage(error)}`),
      ),
    );
    child.on('close', (code) => {
      if (code === 0) return ok();
      let detail = stderr.trim().split('\n').slice(-5).join(' ') || `exited with ${code}`;
      if (secret) detail = detail.split(secret).join('***');
      const name = command.split('/').pop()!;
      // pg_restore already starts its messages with its name ("pg_restore: error: ...").
      fail(new Error(detail.startsWith(`${name}:`) ? detail : `${name}: ${detail}`));
    });
  });
  return { stdout: child.stdout!, done };
}

/** Fails (before anything changes) unless the file exists and pg_restore can read it as an archive. */
export async function checkArchive(path: string, tools: RestoreTools): Promise<string> {
  const file = resolve(path);
  try {
    await access(file);
  } catch {
    throw new InputError(
      'backup-path',
      `names ${JSON.stringify(path)}, which does not exist`,
      'the path of a pg_dump archive taken by run-migrations (its backup-path output)',
    );
  }
  const listed = run(tools.pgRestorePath, ['--list', file], tools.env, undefined);
  listed.stdout.resume();
  try {
    await listed.done;
  } catch (error) {
    if (error instanceof ToolNotFound)
      throw new PipelineError(`${error.message}. Nothing was changed.`, { cause: error });
    throw new InputError(
      'backup-path',
      `names ${JSON.stringify(path)}, which pg_restore cannot read (${errorMessage(error)})`,
      'a pg_dump archive in custom format (-Fc), as run-migrations writes',
    );
  }
  return file;
}

/** Runs the restore of `restoreCommand` without a shell. Rejects with psql's or pg_restore's words. */
export async function restoreDatabase(
  target: ConnectionTarget,
  file: string,
  tools: RestoreTools,
  kept: readonly string[] = [],
): Promise<void> {
  const env = libpqEnv(target, tools.env);
  const args = ['--file=-', file];
  let listDir: string | undefined;
  if (kept.length > 0) {
    const listed = run(tools.pgRestorePath, ['--list', file], env, target.password);
    let toc = '';
    listed.stdout.on('data', (chunk: Buffer) => {
      toc += chunk.toString();
    });
    await listed.done;
    const skip = keptEntry(kept);
    listDir = await mkdtemp(join(tmpdir(), 'restore-list-'));
    const listFile = join(listDir, 'toc.list');
    await writeFile(
      listFile,
      toc
        .split('\n')
        .filter((line) => !skip.test(line))
        .join('\n'),
    );
    args.unshift(`--use-list=${listFile}`);
  }
  try {
    const dump = run(tools.pgRestorePath, args, env, target.password);
    const replay = run(tools.psqlPath, psqlArgs(target), env, target.password, dump.stdout);
    const results = await Promise.allSettled([replay.done, dump.done]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  } finally {
    if (listDir) await rm(listDir, { recursive: true, force: true });
  }
}

/** Restores an archive into an empty database (the drill's scratch copy), in one transaction. */
export async function restoreInto(
  target: ConnectionTarget,
  database: string,
  file: string,
  tools: RestoreTools,
): Promise<void> {
  const env = libpqEnv({ ...target, database }, tools.env);
  const restore = run(
    tools.pgRestorePath,
    ['--single-transaction', '--exit-on-error', '--no-password', `--dbname=${database}`, file],
    env,
    target.password,
  );
  restore.stdout.resume();
  await restore.done;
}
