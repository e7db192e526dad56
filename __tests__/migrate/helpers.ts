import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { MemoryLogger } from '../../packages/core/index.ts';
import {
  type MigrationResult,
  type RunMigrationsOptions,
  runMigrations,
} from '../../packages/migrate/index.ts';

/** A temp directory of migration files; `write` adds or replaces files, `remove` deletes it all. */
export async function migrationsDir(files: Record<string, string> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'migrate-test-'));
  const write = async (more: Record<string, string>) => {
    for (const [name, text] of Object.entries(more)) {
      await mkdir(join(dir, name, '..'), { recursive: true });
      await writeFile(join(dir, name), text);
    }
  };
  await write(files);
  return { dir, write, remove: () => rm(dir, { recursive: true, force: true }) };
}

export type Options = Omit<RunMigrationsOptions, 'logger' | 'lockTimeoutMs'> &
  Partial<Pick<RunMigrationsOptions, 'logger' | 'lockTimeoutMs'>>;

export function migrate(options: Options): Promise<MigrationResult> {
  return runMigrations({ lockTimeoutMs: 30_000, logger: new MemoryLogger(), ...options });
}

/** Runs `body` with a connected client and closes it. */
export async function withClient<T>(url: string, body: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end().catch(() => {});
  }
}

export async function query<T extends pg.QueryResultRow = Record<string, unknown>>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  return withClient(url, async (c) => (await c.query<T>(sql, params)).rows);
}

export async function history(url: string, table = 'public.schema_migrations') {
  return query<{
    version: string;
    name: string;
    success: boolean;
    checksum: string;
    applied_by: string | null;
  }>(url, `SELECT version::text, name, success, checksum, applied_by FROM ${table} ORDER BY version`);
}

export async function tableExists(url: string, name: string): Promise<boolean> {
  const rows = await query<{ t: string | null }>(url, 'SELECT to_regclass($1)::text AS t', [name]);
  return rows[0]?.t != null;
}

/** Polls (with a deadline) until `probe` returns a value; tests use it to wait for a session to reach a state. */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `pg_dump --schema-only` of a database, without the lines that differ between two dumps of one schema. */
export async function schemaOf(
  pgDump: string,
  url: string,
  options: { excludeHistory?: boolean } = {},
): Promise<string> {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const args = ['--schema-only', '--no-owner', '--no-privileges', url];
  if (options.excludeHistory) args.unshift('--exclude-table=public.schema_migrations');
  const { stdout } = await promisify(execFile)(pgDump, args, { maxBuffer: 64 * 1024 * 1024 });
  // \restrict carries a random key per dump; comments name the dump's time and versions.
  return stdout
    .split('\n')
    .filter((line) => !/^\\(?:un)?restrict /.test(line) && !line.startsWith('--'))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n');
}

/** Every row of every table in the public schema and in `audit`, as JSON, in a stable order. */
export async function dataOf(url: string): Promise<Record<string, unknown[]>> {
  return withClient(url, async (c) => {
    const tables = await c.query<{ name: string }>(
      `SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables
        WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
    );
    const out: Record<string, unknown[]> = {};
    for (const { name } of tables.rows) {
      const { rows } = await c.query(`SELECT to_jsonb(t) AS row FROM ${name} t ORDER BY to_jsonb(t)::text`);
      // applied_at and duration_ms differ between two applications of the same history.
      out[name] = rows.map((r) => {
        const row = { ...(r.row as Record<string, unknown>) };
        if (name === 'public.schema_migrations') {
          delete row.applied_at;
          delete row.duration_ms;
        }
        return row;
      });
    }
    return out;
  });
}
