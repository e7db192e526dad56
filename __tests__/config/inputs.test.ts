import { describe, expect, test } from '@jest/globals';
import { defineInputs, input, parseInputs } from '../../packages/config/index.ts';
import { yamlInput } from '../../packages/config/yaml-input.ts';
import { InputError } from '../../packages/core/index.ts';

const schema = defineInputs({
  event: input.enum(['started', 'succeeded'] as const, { required: true }),
  'fail-on-error': input.boolean({ default: 'false' }),
  timeout: input.duration({ default: '5m' }),
  stages: input.map(),
  channels: input.list(),
  'api-url': input.url({ default: 'https://slack.com/api/' }),
  token: input.secret(),
  attempts: input.integer({ default: '5', min: 1, max: 10 }),
  checks: yamlInput((doc, name) => {
    if (!Array.isArray(doc)) throw new InputError(name, 'is not a list', 'a YAML list');
    return doc as unknown[];
  }),
});

const from = (values: Record<string, string>) => (name: string) => values[name] ?? '';

describe('parseInputs', () => {
  test('parses every kind into camelCase keys, with defaults', () => {
    const parsed = parseInputs(
      schema,
      from({
        event: 'Started',
        stages: 'dev=succeeded\nstaging=running',
        channels: 'a, b\n# c\nd',
        token: 't0k',
        checks: '- a\n- b',
      }),
    );
    expect(parsed.event).toBe('started');
    expect(parsed.failOnError).toBe(false);
    expect(parsed.timeout).toBe(300_000);
    expect([...parsed.stages!.entries()]).toEqual([
      ['dev', 'succeeded'],
      ['staging', 'running'],
    ]);
    expect(parsed.channels).toEqual(['a', 'b', 'd']);
    expect(parsed.apiUrl).toBe('https://slack.com/api/');
    expect(parsed.token).toBe('t0k');
    expect(parsed.attempts).toBe(5);
    expect(parsed.checks).toEqual(['a', 'b']);
  });

  test.each([
    [{}, /Input 'event' is required but was not set\. Accepted: one of started, succeeded\./],
    [
      { event: 'done' },
      /Input 'event' has "done", which is not a known value\. Accepted: one of started, succeeded\./,
    ],
    [
      { event: 'started', 'fail-on-error': 'maybe' },
      /Input 'fail-on-error' has "maybe", which is not a boolean\. Accepted: true or false/,
    ],
    [{ event: 'started', timeout: '5 minutes' }, /Input 'timeout' has "5 minutes", which is not a duration/],
    [{ event: 'started', stages: 'dev' }, /Input 'stages' has "dev" which is not key=value/],
    [{ event: 'started', 'api-url': 'slack.com' }, /Input 'api-url' has "slack.com" which is not a URL/],
    [
      { event: 'started', attempts: '11' },
      /Input 'attempts' has 11, which is out of range\. Accepted: a whole number from 1 to 10\./,
    ],
    [{ event: 'started', checks: 'a: [' }, /Input 'checks' is not valid YAML/],
    [{ event: 'started', checks: 'a: 1' }, /Input 'checks' is not a list\. Accepted: a YAML list\./],
  ])('rejects %j with a message naming the input and the accepted form', (values, message) => {
    expect(() => parseInputs(schema, from(values as Record<string, string>))).toThrow(message);
  });

  test('masks secrets before validating anything, so no error can show them', () => {
    const masked: string[] = [];
    expect(() =>
      parseInputs(schema, from({ token: 'abc\ndef', event: 'nope' }), (s) => masked.push(s)),
    ).toThrow(InputError);
    expect(masked).toEqual(['abc\ndef', 'abc', 'def']);
  });
});
