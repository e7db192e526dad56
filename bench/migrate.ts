// run-migrations engine against a throwaway PostgreSQL: apply N generated migrations to a fresh
// database (one transaction each, then as one batch), re-run with nothing pending, status, verify,
// down all. Prints timings. Run: `node bench/migrate.ts [count]` (default 500).
//
// Then, when they are installed, the same N migrations in dbmate's and node-pg-migrate's own file
// formats, each applied to a fresh database on the same server and re-run with nothing pending,
// with ratios against our engine. They are never project dependencies; get them with
//   npm install --prefix /tmp/bench-tools dbmate node-pg-migrate pg
// (dbmate's npm package ships its Go binary; node-pg-migrate needs pg beside it), or point
// BENCH_TOOLS at another prefix. A tool that is missing or fails is reported and skipped.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Logger, silentLogger } from '../packages/core/index.ts';
import { type RunMigrationsOptions, runMigrations } from '../packages/migrate/index.ts';
import { startPostgres } from '../packages/testkit/postgres.ts';

const count = Math.max(1, Math.min(5000, Number(process.argv[2] ?? 500)));
const toolsPrefix = process.env.BENCH_TOOLS ?? '/tmp/bench-tools';
const logger: Logger = silentLogger;

const upSql = (i: number) =>
  `CREATE TABLE t_${i} (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz DEFAULT now());\n` +
  `CREATE INDEX t_${i}_name ON t_${i} (name);\n` +
  `INSERT INTO t_${i} (id, name) SELECT g, 'row ' || g FROM generate_series(1, 10) g;\n`;
const downSql = (i: number) => `DROP TABLE t_${i};\n`;

async function generate(dir: string): Promise<void> {
  const width = String(count).length;
  for (let i = 1; i <= count; i++) {
    const v = String(i).padStart(width, '0');
    await writeFile(
      join(dir, `${v}_table_${i}.sql`),
      `-- migrate:up\n${upSql(i)}-- migrate:down\n${downSql(i)}`,
    );
  }
}

let lastMs = 0;
async function time<T>(label: string, body: () => Promise<T>, per?: number): Promise<T> {
  const start = performance.now();
  const value = await body();
  const ms = performance.now() - start;
  lastMs = ms;
  const each = per ? `  (${(ms / per).toFixed(2)} ms per migration)` : '';
  console.log(`${label.padEnd(56)} ${ms.toFixed(0).padStart(7)} ms${each}`);
  return value;
}

const server = await startPostgres();
const dir = await mkdtemp(join(tmpdir(), 'bench-migrate-'));
try {
  await generate(dir);
  console.log(`PostgreSQL ${server.url}, ${count} migrations (3 statements each)\n`);
  const base = (databaseUrl: string): Omit<RunMigrationsOptions, 'command'> => ({
    databaseUrl,
    dir,
    lockTimeoutMs: 10_000,
    logger,
  });

  const fresh = await server.createDatabase('bench');
  const up = await time(
    `up: ${count} pending, one transaction each`,
    () => runMigrations({ ...base(fresh), command: 'up' }),
    count,
  );
  if (up.applied.length !== count) throw new Error(`applied ${up.applied.length}, expected ${count}`);
  const oursUpMs = lastMs;
  const again = await time('up again: nothing pending', () =>
    runMigrations({ ...base(fresh), command: 'up' }),
  );
  if (again.applied.length !== 0) throw new Error('re-run applied something');
  const oursAgainMs = lastMs;
  await time('status', () => runMigrations({ ...base(fresh), command: 'status' }));
  await time('verify (drift + NOT VALID constraints)', () =>
    runMigrations({ ...base(fresh), command: 'verify' }),
  );
  await time(
    `down to 0: revert ${count}`,
    () => runMigrations({ ...base(fresh), command: 'down', target: '0' }),
    count,
  );

  const batchDb = await server.createDatabase('bench_batch');
  await time(
    `up --batch: ${count} in one transaction`,
    () => runMigrations({ ...base(batchDb), command: 'up', batch: true }),
    count,
  );
  const oursBatchMs = lastMs;

  const backupDb = await server.createDatabase('bench_backup');
  await runMigrations({ ...base(backupDb), command: 'up', target: String(count - 1) });
  await time(`up with pg_dump -Fc backup (${count - 1} tables, 1 pending)`, () =>
    runMigrations({
      ...base(backupDb),
      command: 'up',
      backup: { path: join(dir, 'backup', 'before.dump') },
      pgDumpPath: server.binaries.pgDump,
    }),
  );

  await compareTools(server.createDatabase.bind(server), {
    up: oursUpMs,
    batch: oursBatchMs,
    again: oursAgainMs,
  });
} finally {
  await rm(dir, { recursive: true, force: true });
  await server.stop();
}

/** The tools' exit codes are not trusted alone: a run counts only if all N tables exist afterwards. */
async function tablesIn(databaseUrl: string): Promise<number> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const r = await client.query(
      "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public' AND tablename ~ '^t_[0-9]+$'",
    );
    return (r.rows[0] as { n: number }).n;
  } finally {
    await client.end();
  }
}

interface ToolRun {
  code: number | null;
  ms: number;
  output: string;
}

function runTool(
  command: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(command, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (c: Buffer) => {
      output = (output + c.toString()).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, ms: performance.now() - start, output }));
  });
}

/**
 * dbmate and node-pg-migrate on the same server, each with its own copy of the migrations in
 * its format and a fresh database; both run as separate processes, so their times include
 * process start (a few ms for dbmate's Go binary, a few hundred for Node).
 */
async function compareTools(
  createDatabase: (prefix?: string) => Promise<string>,
  ours: { up: number; batch: number; again: number },
): Promise<void> {
  const rows: { tool: string; up: number; again: number; vsUp: number }[] = [];
  const skipped: string[] = [];
  const root = await mkdtemp(join(tmpdir(), 'bench-migrate-tools-'));
  try {
    const dbmate = join(toolsPrefix, 'node_modules', '.bin', 'dbmate');
    if (!existsSync(dbmate)) {
      skipped.push(`dbmate: not found at ${dbmate}`);
    } else {
      const migrations = join(root, 'dbmate', 'db', 'migrations');
      await mkdir(migrations, { recursive: true });
      for (let i = 1; i <= count; i++) {
        const version = `2025${String(i).padStart(10, '0')}`;
        await writeFile(
          join(migrations, `${version}_table_${i}.sql`),
          `-- migrate:up\n${upSql(i)}\n-- migrate:down\n${downSql(i)}`,
        );
      }
      const db = await createDatabase('dbmate');
      const url = `${db}?sslmode=disable`;
      const args = ['--url', url, '--migrations-dir', migrations, '--no-dump-schema', 'up'];
      const first = await runTool(dbmate, args, join(root, 'dbmate'));
      const second = first.code === 0 ? await runTool(dbmate, args, join(root, 'dbmate')) : first;
      if (first.code !== 0 || second.code !== 0)
        skipped.push(
          `dbmate: exited ${second.code}: ${second.output.trim().split('\n').slice(-3).join(' | ')}`,
        );
      else if ((await tablesIn(db)) !== count)
        skipped.push(`dbmate: exited 0 but did not create ${count} tables`);
      else
        rows.push({
          tool: 'dbmate up (one transaction each)',
          up: first.ms,
          again: second.ms,
          vsUp: ours.up,
        });
    }

    const npm = join(toolsPrefix, 'node_modules', '.bin', 'node-pg-migrate');
    if (!existsSync(npm)) {
      skipped.push(`node-pg-migrate: not found at ${npm}`);
    } else {
      const migrations = join(root, 'node-pg-migrate', 'migrations');
      await mkdir(migrations, { recursive: true });
      const width = String(count).length;
      for (let i = 1; i <= count; i++) {
        await writeFile(
          join(migrations, `${String(i).padStart(width, '0')}_table_${i}.sql`),
          `-- Up Migration\n${upSql(i)}\n-- Down Migration\n${downSql(i)}`,
        );
      }
      // node-pg-migrate runs all pending migrations in one transaction by default: ours with --batch is its match.
      for (const [label, flags, vsUp] of [
        ['node-pg-migrate up --no-single-transaction', ['--no-single-transaction'], ours.up],
        ['node-pg-migrate up (single transaction)', [], ours.batch],
      ] as const) {
        const db = await createDatabase('npm');
        const args = ['up', '--migrations-dir', migrations, '--no-verbose', ...flags];
        const env = { DATABASE_URL: db };
        const first = await runTool(npm, args, join(root, 'node-pg-migrate'), env);
        const second =
          first.code === 0 ? await runTool(npm, args, join(root, 'node-pg-migrate'), env) : first;
        if (first.code !== 0 || second.code !== 0)
          skipped.push(
            `${label}: exited ${second.code}: ${second.output.trim().split('\n').slice(-3).join(' | ')}`,
          );
        else if ((await tablesIn(db)) !== count)
          skipped.push(`${label}: exited 0 but did not create ${count} tables`);
        else rows.push({ tool: label, up: first.ms, again: second.ms, vsUp });
      }
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }

  console.log(
    `\nComparison, ${count} migrations, fresh database each (ratio = tool / ours; > 1 means ours is faster)`,
  );
  console.log(
    `${'tool'.padEnd(46)}${'up ms'.padStart(9)}${'×ours'.padStart(8)}${'re-run ms'.padStart(11)}${'×ours'.padStart(8)}`,
  );
  console.log(
    `${'ours up (one transaction each)'.padEnd(46)}${ours.up.toFixed(0).padStart(9)}${'1.00'.padStart(8)}${ours.again.toFixed(0).padStart(11)}${'1.00'.padStart(8)}`,
  );
  console.log(
    `${'ours up --batch (one transaction)'.padEnd(46)}${ours.batch.toFixed(0).padStart(9)}${'1.00'.padStart(8)}`,
  );
  for (const r of rows) {
    console.log(
      `${r.tool.padEnd(46)}${r.up.toFixed(0).padStart(9)}${(r.up / r.vsUp).toFixed(2).padStart(8)}${r.again.toFixed(0).padStart(11)}${(r.again / ours.again).toFixed(2).padStart(8)}`,
    );
  }
  for (const s of skipped)
    console.log(
      `skipped ${s} (npm install --prefix ${toolsPrefix} dbmate node-pg-migrate pg, or set BENCH_TOOLS)`,
    );
}
