import { describe, expect, test } from '@jest/globals';
import {
  DURATION_MAX,
  formatDuration,
  InputError,
  parseDuration,
  systemClock,
} from '../../packages/core/index.ts';

describe('parseDuration', () => {
  test.each([
    ['90s', 90_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['250ms', 250],
    ['1.5s', 1500],
    ['2d', 172_800_000],
    ['30', 30_000],
    [' 15m ', 900_000],
  ])('reads %s as %i ms', (text, ms) => {
    expect(parseDuration(text, 'duration', { maxMs: DURATION_MAX.window })).toBe(ms);
  });

  test.each(['', 'soon', '5 minutes', '1h 30m', '-5s', 'm5'])(
    'rejects %j naming the input and the accepted form',
    (text) => {
      expect(() => parseDuration(text, 'timeout')).toThrow(InputError);
      expect(() => parseDuration(text, 'timeout')).toThrow(/Input 'timeout' .*Accepted: a duration such as/);
    },
  );

  // Units are lowercase: 15M would be a minute to the parser and a month to a reader.
  test.each(['15M', '1H', '2D', '90S', '250MS'])('rejects %j, saying units are lowercase', (text) => {
    expect(() => parseDuration(text, 'timeout')).toThrow(
      new RegExp(
        `^Input 'timeout' has "${text}", which is not a duration \\(units are lowercase: ms, s, m, h, d\\)`,
      ),
    );
  });

  test('formats back into the same syntax', () => {
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(1500)).toBe('1.5s');
    expect(formatDuration(42)).toBe('42ms');
    expect(parseDuration(formatDuration(93_784_000), 'soak', { maxMs: DURATION_MAX.window })).toBe(
      93_784_000,
    );
  });
});

describe('duration limits', () => {
  test.each([
    ['25d', 'timeout', {}, /has "25d", which is longer than 1d\. Accepted: .*at most 1d\.$/],
    ['60d', 'duration', { maxMs: DURATION_MAX.window }, /has "60d", which is longer than 7d/],
    [`1${'0'.repeat(400)}`, 'timeout', {}, /\(401 characters\), which is too long for a duration/],
    [`${'9'.repeat(30)}d`, 'timeout', {}, /which is longer than 1d/],
    ['1e400', 'timeout', {}, /which is not a duration/],
  ])('%s for %s is one InputError naming the input and its maximum', (text, name, limits, message) => {
    expect(() => parseDuration(text, name, limits)).toThrow(InputError);
    expect(() => parseDuration(text, name, limits)).toThrow(message);
    expect(() => parseDuration(text, name, limits)).toThrow(new RegExp(`^Input '${name}' `));
  });

  test('the maxima are accepted exactly, and every result is a finite whole number of ms', () => {
    expect(parseDuration('24h', 'timeout')).toBe(86_400_000);
    expect(parseDuration('7d', 'duration', { maxMs: DURATION_MAX.window })).toBe(604_800_000);
    expect(parseDuration('0.0004s')).toBe(0);
    expect(Number.isInteger(parseDuration('1.23456789s'))).toBe(true);
  });

  test('a minimum is named in the error', () => {
    expect(() => parseDuration('50ms', 'interval', { minMs: 100 })).toThrow(
      /has "50ms", which is shorter than 100ms\. Accepted: .*at least 100ms and at most 1d\.$/,
    );
  });
});

describe('systemClock.sleep beyond the 2^31-1 ms timer limit', () => {
  test('a 30-day sleep neither fires at once nor warns; it waits until aborted', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const abort = new AbortController();
      let settled = 'pending';
      const sleeping = systemClock.sleep(30 * 86_400_000, abort.signal).then(
        () => {
          settled = 'resolved';
        },
        () => {
          settled = 'aborted';
        },
      );
      await new Promise((r) => setTimeout(r, 150));
      expect(settled).toBe('pending');
      abort.abort();
      await sleeping;
      expect(settled).toBe('aborted');
      expect(warnings).not.toContain('TimeoutOverflowWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });

  test('a short sleep still resolves', async () => {
    const started = Date.now();
    await systemClock.sleep(20);
    expect(Date.now() - started).toBeGreaterThanOrEqual(19);
  });
});
