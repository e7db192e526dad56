import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';

/** The system's Node 20: the version a user without setup-node would have. */
const OLD_NODE = '/usr/bin/node';
const root = join(import.meta.dirname, '..', '..');
const LINE =
  /^pipeline needs Node 24 or newer; this is Node 2\d\.\d+\.\d+\. Install Node 24 \(nvm install 24, https:\/\/nodejs\.org, or actions\/setup-node with node-version: 24\) and run it again\.$/m;

function runOld(
  command: string,
  args: string[],
  cwd = root,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      // Only the old Node on PATH, as on a machine that never installed 24.
      { cwd, env: { ...process.env, PATH: `/usr/bin:/bin`, npm_config_update_notifier: 'false' } },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const noStack = (text: string) => expect(text).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);

const oldNodeHere = existsSync(OLD_NODE);
(oldNodeHere ? describe : describe.skip)('every entry point on Node < 24 says which Node it needs', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'old-node-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  test('the old Node really is older than 24', async () => {
    const { stdout } = await runOld(OLD_NODE, ['--version']);
    expect(Number(stdout.trim().slice(1).split('.')[0])).toBeLessThan(24);
  });

  test('node bin/pipeline.js: one line on stderr, exit 1', async () => {
    const run = await runOld(OLD_NODE, ['bin/pipeline.js', 'rehearse']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(LINE);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
  });

  test('npx pipeline in a repository that installed it', async () => {
    const consumer = join(scratch, 'consumer');
    mkdirSync(join(consumer, 'node_modules', '.bin'), { recursive: true });
    writeFileSync(join(consumer, 'package.json'), '{ "name": "consumer", "private": true }\n');
    symlinkSync(root, join(consumer, 'node_modules', 'pipeline'));
    symlinkSync('../pipeline/bin/pipeline.js', join(consumer, 'node_modules', '.bin', 'pipeline'));
    const run = await runOld('/usr/bin/npx', ['--no-install', 'pipeline', '--help'], consumer);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(LINE);
    noStack(run.stderr);
  });

  test.each([['rehearse'], ['test'], ['bench'], ['docs']])('npm run %s', async (script) => {
    const run = await runOld('/usr/bin/npm', ['run', '--silent', script]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(LINE);
    noStack(run.stderr);
    expect(run.stderr).not.toMatch(/SyntaxError|registerHooks|globSync|undici/);
  });

  test('jest run directly stops in its global setup', async () => {
    const run = await runOld(OLD_NODE, [
      '--experimental-vm-modules',
      'node_modules/jest/bin/jest.js',
      '__tests__/core',
    ]);
    expect(run.code).toBe(1);
    expect(`${run.stdout}${run.stderr}`).toMatch(LINE);
    expect(`${run.stdout}${run.stderr}`).not.toMatch(/Tests:/);
  });

  test('npm ci refuses to install (engine-strict in .npmrc)', async () => {
    for (const f of ['package.json', 'package-lock.json', '.npmrc'])
      copyFileSync(join(root, f), join(scratch, f));
    const run = await runOld('/usr/bin/npm', ['ci', '--offline', '--ignore-scripts'], scratch);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/EBADENGINE/);
    expect(run.stderr).toContain('Required: {"node":">=24"}');
    expect(existsSync(join(scratch, 'node_modules'))).toBe(false);
  });
});
