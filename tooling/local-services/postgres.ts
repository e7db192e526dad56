import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/**
 * A throwaway PostgreSQL server for tests and benchmarks: initdb into a temp dir, start `postgres`
 * on a free TCP port (no Unix socket), hand back a URL, and remove everything on stop.
 *
 * PostgreSQL refuses to run as root. When we are root (CI containers), the server runs as the
 * `postgres` system user if it exists, else as `nobody`, which every Linux base image has; the
 * temp dir (under /tmp, or PIPELINE_PG_TMPDIR) is handed to that user. Override the user with
 * PIPELINE_PG_USER, and the binaries' directory with PIPELINE_PG_BIN.
 */

export interface PostgresBinaries {
  binDir: string;
  initdb: string;
  postgres: string;
  pgDump: string;
  pgRestore: string;
}

export interface PostgresServer {
  /** postgres://postgres@127.0.0.1:<port>/postgres (trust auth, no password). */
  url: string;
  host: string;
  port: number;
  user: string;
  binaries: PostgresBinaries;
  /** A URL for the same server and another database. */
  urlFor(database: string): string;
  /** Creates an empty database and returns its URL; names are made unique per call. */
  createDatabase(prefix?: string): Promise<string>;
  /** Stops the server (fast shutdown, then SIGKILL) and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

export const POSTGRES_INSTALL_HINT =
  'install the PostgreSQL server binaries (Debian/Ubuntu: `apt-get install postgresql`, which brings ' +
  'initdb, postgres, pg_dump and pg_restore under /usr/lib/postgresql/<major>/bin), or point ' +
  'PIPELINE_PG_BIN at a directory holding them';

const REQUIRED = ['initdb', 'postgres', 'pg_dump', 'pg_restore'] as const;

function candidateDirs(env: NodeJS.ProcessEnv): string[] {
  const dirs: string[] = [];
  if (env.PIPELINE_PG_BIN) dirs.push(env.PIPELINE_PG_BIN);
  const debianRoot = '/usr/lib/postgresql';
  if (existsSync(debianRoot)) {
    const majors = readdirSync(debianRoot)
      .filter((d) => /^\d+$/.test(d))
      .sort((a, b) => Number(b) - Number(a));
    for (const major of majors) dirs.push(join(debianRoot, major, 'bin'));
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) if (dir) dirs.push(dir);
  return dirs;
}

/** Where initdb, postgres, pg_dump and pg_restore live (all from one directory), or undefined. */
function findPostgresBinaries(env: NodeJS.ProcessEnv = process.env): PostgresBinaries | undefined {
  for (const dir of candidateDirs(env)) {
    if (REQUIRED.every((name) => existsSync(join(dir, name)))) {
      return {
        binDir: dir,
        initdb: join(dir, 'initdb'),
        postgres: join(dir, 'postgres'),
        pgDump: join(dir, 'pg_dump'),
        pgRestore: join(dir, 'pg_restore'),
      };
    }
  }
  return undefined;
}

/**
 * Whether tests that need PostgreSQL can run. Missing binaries fail loudly in CI (CI=true), where a
 * silently skipped suite would look green; elsewhere the suite is skipped with a note on what to install.
 */
export function postgresAvailable(env: NodeJS.ProcessEnv = process.env): boolean {
  if (findPostgresBinaries(env)) return true;
  const message = `PostgreSQL binaries not found: ${POSTGRES_INSTALL_HINT}.`;
  if (env.CI === 'true') throw new Error(`${message} CI=true, so the PostgreSQL tests cannot be skipped.`);
  console.warn(`Skipping PostgreSQL tests. ${message}`);
  return false;
}

interface RunAs {
  uid: number;
  gid: number;
  name: string;
}

function idOf(user: string): RunAs | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8', stdio: 'pipe' }).trim());
    const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8', stdio: 'pipe' }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) && uid !== 0 ? { uid, gid, name: user } : undefined;
  } catch {
    return undefined;
  }
}

function serverUser(env: NodeJS.ProcessEnv): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const names = env.PIPELINE_PG_USER ? [env.PIPELINE_PG_USER] : ['postgres', 'nobody'];
  for (const name of names) {
    const found = idOf(name);
    if (found) return found;
  }
  throw new Error(
    `Running as root, and none of the users ${names.join(', ')} exists to run PostgreSQL as; ` +
      'create one (useradd --system postgres) or set PIPELINE_PG_USER',
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function run(
  command: string,
  args: string[],
  runAs: RunAs | undefined,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${command} exited with ${code ?? signal}:\n${output.slice(-4000)}`));
    });
  });
}

const live = new Set<{ child: ChildProcess; dir: string }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A crashed test run must not leave servers and data dirs behind.
  process.on('exit', () => {
    for (const entry of live) {
      entry.child.kill('SIGKILL');
      rmSync(entry.dir, { recursive: true, force: true });
    }
  });
}

export interface StartPostgresOptions {
  /** How long to wait for the server to accept connections (default 60 s). */
  startTimeoutMs?: number;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
  /** Serve TLS with this certificate (PEM) and key; plain connections stay allowed. */
  tls?: { certPem: string; keyPem: string };
}

/** Starts a fresh server. Throws (with the server log) when the binaries are missing or it cannot start. */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const binaries = findPostgresBinaries();
  if (!binaries) throw new Error(`PostgreSQL binaries not found: ${POSTGRES_INSTALL_HINT}`);
  const runAs = serverUser(process.env);
  // As root the server user must reach the directory: /tmp is world-traversable, a TMPDIR under /root is not.
  const dir = await mkdtemp(
    join(runAs ? (process.env.PIPELINE_PG_TMPDIR ?? '/tmp') : tmpdir(), 'pipeline-pg-'),
  );
  const dataDir = join(dir, 'data');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    LC_ALL: 'C',
    LANG: 'C',
    TZ: 'UTC',
  };
  try {
    if (runAs) {
      await chown(dir, runAs.uid, runAs.gid);
      await chmod(dir, 0o700);
    }
    await run(
      binaries.initdb,
      ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-locale', '--no-sync'],
      runAs,
      env,
    );
    if (options.tls) {
      // PostgreSQL insists that the key belongs to the server user and is not readable by others.
      for (const [name, pem] of [
        ['server.crt', options.tls.certPem],
        ['server.key', options.tls.keyPem],
      ] as const) {
        await writeFile(join(dataDir, name), pem, { mode: 0o600 });
        if (runAs) await chown(join(dataDir, name), runAs.uid, runAs.gid);
      }
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }

  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    // Throwaway data: durability buys nothing here and costs the tests seconds.
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_connections: '100',
    shared_buffers: '32MB',
    ...(options.tls ? { ssl: 'on', ssl_cert_file: 'server.crt', ssl_key_file: 'server.key' } : {}),
    ...options.settings,
  };
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  let lastError: unknown;
  for (let attempt = 1; attempt <= 5; attempt++) {
    const port = await freePort();
    const args = ['-D', dataDir, '-p', String(port)];
    for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);
    const child = spawn(binaries.postgres, args, {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    });
    const entry = { child, dir };
    live.add(entry);
    installExitHook();
    try {
      await waitForReady(child, deadline);
    } catch (error) {
      lastError = error;
      live.delete(entry);
      child.kill('SIGKILL');
      // Another process may have taken the port between our probe and the server's bind: try again.
      if (/could not (bind|create listen socket)|Address already in use/i.test(String(error))) continue;
      break;
    }
    return makeServer(binaries, port, entry);
  }
  await rm(dir, { recursive: true, force: true });
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

function waitForReady(child: ChildProcess, deadline: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(
      () => finish(new Error(`PostgreSQL did not become ready in time:\n${log.slice(-4000)}`)),
      Math.max(0, deadline - Date.now()),
    );
    const onData = (d: Buffer) => {
      log += d.toString();
      if (log.includes('database system is ready to accept connections')) finish();
    };
    const onExit = (code: number | null, signal: string | null) =>
      finish(new Error(`PostgreSQL exited with ${code ?? signal} while starting:\n${log.slice(-4000)}`));
    function finish(error?: Error) {
      clearTimeout(timer);
      child.stderr?.off('data', onData);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      // Keep draining the server's output so a full pipe never blocks it.
      child.stderr?.resume();
      child.stdout?.resume();
      if (error) reject(error);
      else resolve();
    }
    child.stderr?.on('data', onData);
    child.stdout?.on('data', onData);
    child.on('exit', onExit);
    child.on('error', (error) => finish(error));
  });
}

function makeServer(
  binaries: PostgresBinaries,
  port: number,
  entry: { child: ChildProcess; dir: string },
): PostgresServer {
  const host = '127.0.0.1';
  const user = 'postgres';
  const urlFor = (database: string) => `postgres://${user}@${host}:${port}/${encodeURIComponent(database)}`;
  let counter = 0;
  let stopping: Promise<void> | undefined;
  const server: PostgresServer = {
    url: urlFor('postgres'),
    host,
    port,
    user,
    binaries,
    urlFor,
    async createDatabase(prefix = 'test') {
      const name = `${prefix.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${process.pid}_${++counter}`;
      const { default: pg } = await import('pg');
      const client = new pg.Client({ connectionString: server.url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${name}"`);
      } finally {
        await client.end();
      }
      return urlFor(name);
    },
    stop() {
      stopping ??= (async () => {
        const { child, dir } = entry;
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
          child.kill('SIGINT'); // fast shutdown: disconnects clients, no checkpoint wait on our side
          const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(timer);
        }
        live.delete(entry);
        await rm(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
  return server;
}
