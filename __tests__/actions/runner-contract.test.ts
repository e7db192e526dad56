import { describe, expect, test } from '@jest/globals';
import { maskText, parseFileCommand, parseWorkflowCommands } from '../../tooling/runners/action-runner.ts';

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
});
