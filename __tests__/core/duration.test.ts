import { describe, expect, test } from '@jest/globals';
import { formatDuration, InputError, parseDuration } from '../../packages/core/index.ts';

describe('parseDuration', () => {
  test.each([
    ['90s', 90_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['250ms', 250],
    ['1.5s', 1500],
    ['2d', 172_800_000],
    ['30', 30_000],
    [' 15M ', 900_000],
  ])('reads %s as %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  test.each(['', 'soon', '5 minutes', '1h 30m', '-5s', 'm5'])(
    'rejects %j naming the input and the accepted form',
    (text) => {
      expect(() => parseDuration(text, 'timeout')).toThrow(InputError);
      expect(() => parseDuration(text, 'timeout')).toThrow(/Input 'timeout' .*Accepted: a duration such as/);
    },
  );

  test('formats back into the same syntax', () => {
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(1500)).toBe('1.5s');
    expect(formatDuration(42)).toBe('42ms');
    expect(parseDuration(formatDuration(93_784_000))).toBe(93_784_000);
  });
});
