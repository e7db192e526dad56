import { describe, expect, test } from '@jest/globals';
import { parseEnvironmentsConfig, WINDOWS_VARIABLE } from '../../packages/github/environments.ts';

describe('deploy windows in the environments file', () => {
  test("become the environment's PIPELINE_WINDOWS variable, which the release gate reads", () => {
    const config = parseEnvironmentsConfig(`
environments:
  production:
    variables: { APP_URL: https://shop.example.com }
    windows:
      timezone: Europe/Berlin
      allow: [Mon-Fri 08:00-17:00]
      deny: [Fri 12:00 - Mon 08:00]
      holidays: [2026-12-24, { date: 2026-12-31, name: New Year's Eve }]
`);
    const variables = config.environments[0]!.variables!;
    expect(variables.get('APP_URL')).toBe('https://shop.example.com');
    expect(JSON.parse(variables.get(WINDOWS_VARIABLE)!)).toEqual({
      production: {
        timezone: 'Europe/Berlin',
        allow: ['Mon-Fri 08:00-17:00'],
        deny: ['Fri 12:00 - Mon 08:00'],
        holidays: ['2026-12-24', { date: '2026-12-31', name: "New Year's Eve" }],
      },
    });
  });

  test.each([
    [
      'windows: { timezone: Mars/Olympus }\n    variables: {}',
      'environments.production.windows: the time zone "Mars/Olympus" is not an IANA time zone',
    ],
    [
      'windows: { deny: [Fri 12 - Mon 8] }\n    variables: {}',
      'environments.production.windows: "Fri 12 - Mon 8" is not a rule such as',
    ],
    [
      'windows: { deny: [Fri 12:00 - Mon 08:00] }',
      'environments.production.windows: needs variables: in the same environment',
    ],
    ['windows: { opens: daily }\n    variables: {}', 'environments.production.windows: unknown key opens'],
    ['windows: {}\n    variables: { PIPELINE_WINDOWS: x }', 'clashes with variables.PIPELINE_WINDOWS'],
  ])('%s is refused, naming the environment and the field', (body, message) => {
    expect(() => parseEnvironmentsConfig(`environments:\n  production:\n    ${body}\n`)).toThrow(message);
  });
});
