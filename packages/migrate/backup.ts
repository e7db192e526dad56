import { chmod, mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { errorMessage } from '../core/index.ts';
import { type ConnectionTarget, libpqEnv } from './connection.ts';

/** A PostgreSQL client program (pg_dump, pg_restore, psql) is not installed where it was looked for. */
export class ToolNotFound extends Error {
  constructor(command: string) {
    const name = command.split('/').pop()!;
    super(
      `${name} was not found (${command.includes('/') ? `no file ${command}` : `no ${name} on PATH`}): ` +
        "install the PostgreSQL client programs of the server's major version on the runner " +
        '(Debian and Ubuntu: apt-get install postgresql-client, or postgresql-client-<major> from the PGDG repository)',
    );
  }
}

/** pg_dump was stopped because the job was cancelled. */
export class BackupCancelled extends Error {
  constructor() {
    super('pg_dump was stopped: the job was cancelled');
  }
}

/** pg_dump in custom format (-Fc). Resolves with the absolute path; rejects with pg_dump's own words. */
export async function dumpDatabase(
  target: ConnectionTarget,
  path: string,
  pgDumpPath: string,
  env: NodeJS.ProcessEnv,
  signal?: AbortSignal,
): Promise<string> {
  const file = resolve(path);
  await mkdir(dirname(file), { recursive: true });
  // The dump holds every row, credentials tables included: owner-only, created so before pg_dump
  // writes to it (pg_dump truncates an existing file and keeps its mode; it would create one 0644).
  await writeFile(file, '', { mode: 0o600 });
  await chmod(file, 0o600);
  // Loaded on first use: child_process costs every run's start a few milliseconds, and only
  // backups and restores spawn anything.
  const { execFile } = process.getBuiltinModule('node:child_process');
  await new Promise<void>((done, fail) => {
    execFile(
      pgDumpPath,
      ['--format=custom', '--no-password', `--file=${file}`],
      // A cancelled job stops pg_dump (SIGTERM) instead of waiting for it to finish a large dump.
      { env: libpqEnv(target, env), maxBuffer: 16 * 1024 * 1024, ...(signal ? { signal } : {}) },
      (error, _stdout, stderr) => {
        if (!error) return done();
        if (signal?.aborted) return fail(new BackupCancelled());
        if ((error as { code?: unknown }).code === 'ENOENT') return fail(new ToolNotFound(pgDumpPath));
        let detail = (String(stderr).trim() || errorMessage(error)).split('\n').slice(-5).join(' ');
        if (target.password) detail = detail.split(target.password).join('***');
        fail(new Error(detail));
      },
    );
  });
  const size = (await stat(file)).size;
  if (size === 0) throw new Error(`pg_dump wrote an empty file at ${file}`);
  return file;
}
