import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { postgresAvailable } from '../../tooling/local-services/postgres.ts';

const root = join(import.meta.dirname, '..', '..');
// Private temporary roots, so other test runs' directories never count for or against this one.
const temp = mkdtempSync(join(tmpdir(), 'rehearse-interrupt-'));
// The PostgreSQL server may run as another user, which must be able to reach its directory.
const pgTemp = mkdtempSync('/tmp/rehearse-interrupt-pg-');
chmodSync(pgTemp, 0o755);
afterAll(() => {
  rmSync(temp, { recursive: true, force: true });
  rmSync(pgTemp, { recursive: true, force: true });
});

const until = async (what: string, ok: () => boolean, ms = 120_000) => {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

(postgresAvailable() ? describe : describe.skip)('pipeline rehearse and Ctrl-C', () => {
  test('SIGINT mid-rehearsal stops PostgreSQL and removes its data directory and the workspace', async () => {
    const child = spawn(process.execPath, ['bin/pipeline.js', 'rehearse', '--scenario', 'healthy'], {
      cwd: root,
      env: { ...process.env, TMPDIR: temp, PIPELINE_PG_TMPDIR: pgTemp, CI: 'true' },
      // Its own process group, so the signal reaches it and its children as Ctrl-C in a terminal does.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );

    const pgDirs = () => readdirSync(pgTemp).filter((d) => d.startsWith('pipeline-pg-'));
    const workspaces = () => readdirSync(temp).filter((d) => d.startsWith('rehearsal-'));
    // Mid-rehearsal: the database is up with its data, the workspace is there, and a job has started.
    await until(
      'the rehearsal to be under way',
      () =>
        pgDirs().some((d) => existsSync(join(pgTemp, d, 'data', 'PG_VERSION'))) &&
        workspaces().length > 0 &&
        /dev|deploy|migrat/i.test(stdout),
    );
    expect(pgDirs().length).toBeGreaterThan(0);
    process.kill(-child.pid!, 'SIGINT');
    const { code } = await exited;

    expect(code).toBe(130);
    expect(stderr).toMatch(/Interrupted \(SIGINT\): stopping the rehearsal and removing its temporary files/);
    expect(stderr).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
    expect(pgDirs()).toEqual([]);
    expect(workspaces()).toEqual([]);
  }, 180_000);
});
