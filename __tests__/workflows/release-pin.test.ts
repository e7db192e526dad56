import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { parse } from 'yaml';
import { REPO_ROOT } from '../../tooling/runners/action-runner.ts';
import { unpinnedUses } from '../../tooling/runners/pin.ts';

const WORKFLOWS = join(REPO_ROOT, '.github', 'workflows');

interface Step {
  name?: string;
  run?: string;
}

/** The release's own pinning step, run as written in a scratch clone of the files it touches. */
function scratchRepo(): string {
  const dir = mkdtempSync(join(tmpdir(), 'release-pin-'));
  cpSync(WORKFLOWS, join(dir, '.github', 'workflows'), { recursive: true });
  cpSync(join(REPO_ROOT, 'scripts', 'pin-release.ts'), join(dir, 'scripts', 'pin-release.ts'));
  cpSync(join(REPO_ROOT, 'tooling', 'runners', 'pin.ts'), join(dir, 'tooling', 'runners', 'pin.ts'));
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, stdio: 'pipe' });
  git('init', '-q', '-b', 'main');
  git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'add', '.');
  git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', 'A');
  return dir;
}

const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` };

describe('release.yml pins every reusable workflow', () => {
  let dir: string;
  beforeEach(() => {
    dir = scratchRepo();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('after its pinning step no reusable workflow, rollback.yml included, calls @main, and the check passes', () => {
    const release = parse(readFileSync(join(WORKFLOWS, 'release.yml'), 'utf8'));
    const step = (release.jobs.tag.steps as Step[]).find(
      (s) => s.name === 'pin the reusable workflows to this release',
    )!;
    const verified = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim();
    const run = spawnSync('bash', ['-e', '-c', step.run!], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...env, VERSION: '9.9.9', REPOSITORY: 'fork/pipeline', VERIFIED_SHA: verified },
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const reusable = readdirSync(join(dir, '.github', 'workflows')).filter((f) =>
      /^\s*workflow_call:/m.test(readFileSync(join(dir, '.github', 'workflows', f), 'utf8')),
    );
    expect(reusable.sort()).toEqual(['deploy.yml', 'pipeline.yml', 'rollback.yml']);
    for (const f of reusable) {
      const text = readFileSync(join(dir, '.github', 'workflows', f), 'utf8');
      expect(unpinnedUses(text)).toEqual([]);
      expect(text).not.toMatch(/uses:\s*acme\/pipeline\//);
    }
    const rollback = readFileSync(join(dir, '.github', 'workflows', 'rollback.yml'), 'utf8');
    expect(rollback).toContain(`uses: fork/pipeline/deploy-env@${verified}`);
  });

  test('the check fails for a reusable workflow left unpinned even when it is not named', () => {
    const check = spawnSync(
      process.execPath,
      ['scripts/pin-release.ts', '--check', '.github/workflows/release.yml'],
      { cwd: dir, encoding: 'utf8', env },
    );
    expect(check.status).toBe(1);
    expect(check.stderr).toContain(
      '::error::not pinned to a commit: .github/workflows/rollback.yml: uses: acme/pipeline/deploy-env@main',
    );
  });
});
