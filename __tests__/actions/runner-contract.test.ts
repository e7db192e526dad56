import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { fileCommandRecord, workflowCommand } from '../../packages/core/workflow-commands.ts';
import { maskText, parseWorkflowCommands, runBuiltAction } from '../../tooling/runners/action-runner.ts';
import { parseFileCommand } from '../../tooling/runners/file-commands.ts';

describe('the runner contract as the harness reads it', () => {
  test('file commands: name=value and heredoc records', () => {
    const text = 'ts=1700000001.000100\nresult<<ghadelimiter_1\n{"a":1}\nline two\nghadelimiter_1\nempty=\n';
    expect(parseFileCommand(text)).toEqual({
      ts: '1700000001.000100',
      result: '{"a":1}\nline two',
      empty: '',
    });
  });

  test('an unterminated heredoc is an error, not a silently empty output', () => {
    expect(() => parseFileCommand('x<<EOF\nvalue\n')).toThrow(/Unterminated heredoc for 'x'/);
  });

  test('workflow commands: annotations with escaped data and properties, and masks', () => {
    const stdout = [
      '::add-mask::s3cr%25t',
      '::error file=k8s/app.yaml,line=3,title=Bad%3A kind::Unknown kind%0Ain document 2',
      '::warning::careful 100%25',
      'plain log line',
    ].join('\n');
    const { annotations, masks } = parseWorkflowCommands(stdout);
    expect(masks).toEqual(['s3cr%t']);
    expect(annotations).toEqual([
      {
        level: 'error',
        message: 'Unknown kind\nin document 2',
        properties: { file: 'k8s/app.yaml', line: '3', title: 'Bad: kind' },
      },
      { level: 'warning', message: 'careful 100%', properties: {} },
    ]);
    expect(maskText('token s3cr%t here', masks)).toBe('token *** here');
  });

  test("a step's env cannot redirect the file commands: outputs, state and summary reach the runner", async () => {
    const root = mkdtempSync(join(tmpdir(), 'runner-contract-'));
    try {
      mkdirSync(join(root, 'probe'));
      writeFileSync(
        join(root, 'probe', 'action.yml'),
        'name: probe\ndescription: writes every file command\nruns:\n  using: node24\n  main: main.mjs\n',
      );
      writeFileSync(
        join(root, 'probe', 'main.mjs'),
        [
          "import { appendFileSync } from 'node:fs';",
          'const env = process.env;',
          "appendFileSync(env.GITHUB_OUTPUT, 'answer=' + env.WHO + '\\n');",
          "appendFileSync(env.GITHUB_STATE, 'started=yes\\n');",
          "appendFileSync(env.GITHUB_ENV, 'NEXT=1\\n');",
          "appendFileSync(env.GITHUB_PATH, '/opt/probe/bin\\n');",
          "appendFileSync(env.GITHUB_STEP_SUMMARY, '### probed');",
        ].join('\n'),
      );
      const decoy = join(root, 'decoy');
      writeFileSync(decoy, '');
      const step = await runBuiltAction('probe', {
        root,
        cwd: root,
        env: {
          WHO: 'forty-two',
          GITHUB_OUTPUT: decoy,
          GITHUB_STATE: decoy,
          GITHUB_ENV: decoy,
          GITHUB_PATH: decoy,
          GITHUB_STEP_SUMMARY: decoy,
        },
      });
      expect(step.stderr).toBe('');
      expect(step).toMatchObject({
        exitCode: 0,
        outputs: { answer: 'forty-two' },
        state: { started: 'yes' },
        env: { NEXT: '1' },
        path: ['/opt/probe/bin'],
        summary: '### probed',
      });
      expect(readFileSync(decoy, 'utf8')).toBe('');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('what the actions write, as the runner reads it', () => {
  test('a file-command record round-trips any value, newlines and delimiters of other records included', () => {
    const values = ['', 'plain', 'two\nlines', 'x<<EOF\ny\nEOF', '{"a":"ghadelimiter_1"}', ' padded '];
    const text = values.map((v, i) => fileCommandRecord(`out${i}`, v)).join('');
    expect(parseFileCommand(text)).toEqual(Object.fromEntries(values.map((v, i) => [`out${i}`, v])));
    // Every record has a delimiter of its own.
    expect(new Set(text.match(/ghadelimiter_[0-9a-f-]{36}/g)).size).toBe(values.length);
  });

  test('workflow commands escape what would end the command or start a forged one', () => {
    const line = workflowCommand('warning', '50% done\r\n::add-mask::x');
    expect(line).toBe('::warning::50%25 done%0D%0A::add-mask::x\n');
    const { annotations, masks } = parseWorkflowCommands(line);
    expect(masks).toEqual([]);
    expect(annotations).toEqual([{ level: 'warning', message: '50% done\r\n::add-mask::x', properties: {} }]);
  });
});
