import { describe, expect, test } from '@jest/globals';
import {
  formatLocal,
  parseRule,
  parseSchedule,
  ScheduleError,
  type ScheduleSpec,
  windowState,
} from '../../packages/core/schedule.ts';

const at = (iso: string) => Date.parse(iso);
const state = (spec: ScheduleSpec, iso: string) => {
  const s = windowState(parseSchedule(spec), at(iso));
  return { ...s, next: s.nextChange === undefined ? undefined : new Date(s.nextChange).toISOString() };
};

const weekend = { timezone: 'Europe/Berlin', deny: ['Fri 12:00 - Mon 08:00'] };
const office = { timezone: 'Europe/Berlin', allow: ['Mon-Fri 09:00-16:00'] };

describe('deny Fri 12:00 - Mon 08:00 Europe/Berlin (a weekly range across days)', () => {
  test('open a minute before Friday noon, closing at noon local (11:00 UTC in winter)', () => {
    expect(state(weekend, '2026-12-04T10:59:00Z')).toMatchObject({
      open: true,
      next: '2026-12-04T11:00:00.000Z',
    });
  });
  test('closed from Friday noon to Monday 08:00 CET, which is 07:00 UTC', () => {
    const s = state(weekend, '2026-12-04T11:00:00Z');
    expect(s).toMatchObject({
      open: false,
      reason: 'deny Fri 12:00 - Mon 08:00',
      next: '2026-12-07T07:00:00.000Z',
    });
    expect(formatLocal(s.nextChange!, 'Europe/Berlin', at('2026-12-04T11:00:00Z'))).toBe('Mon 08:00 CET');
    expect(state(weekend, '2026-12-06T23:00:00Z').open).toBe(false);
    expect(state(weekend, '2026-12-07T06:59:00Z').open).toBe(false);
    expect(state(weekend, '2026-12-07T07:00:00Z').open).toBe(true);
  });
  test('in summer the same local edges are an hour earlier in UTC', () => {
    expect(state(weekend, '2026-07-03T09:59:00Z').open).toBe(true);
    expect(state(weekend, '2026-07-03T10:00:00Z')).toMatchObject({
      open: false,
      next: '2026-07-06T06:00:00.000Z',
    });
  });
});

describe('allow Mon-Fri 09:00-16:00 (only within working hours)', () => {
  test('the end is exclusive and the next opening is the next working morning', () => {
    expect(state(office, '2026-12-02T14:59:00Z')).toMatchObject({
      open: true,
      next: '2026-12-02T15:00:00.000Z',
    });
    expect(state(office, '2026-12-02T15:00:00Z')).toMatchObject({
      open: false,
      reason: 'outside Mon-Fri 09:00-16:00',
      next: '2026-12-03T08:00:00.000Z',
    });
  });
  test('over the weekend it opens on Monday', () => {
    expect(state(office, '2026-12-05T12:00:00Z').next).toBe('2026-12-07T08:00:00.000Z');
  });
  test('the DST change in spring moves the UTC instant of 09:00, not the local hour', () => {
    // Berlin goes from CET to CEST on Sunday 29 March 2026.
    const s = state(office, '2026-03-27T16:00:00Z');
    expect(s).toMatchObject({ open: false, next: '2026-03-30T07:00:00.000Z' });
    expect(formatLocal(s.nextChange!, 'Europe/Berlin', at('2026-03-27T16:00:00Z'))).toBe('Mon 09:00 CEST');
  });
  test('and back in autumn', () => {
    expect(state(office, '2026-10-23T15:00:00Z').next).toBe('2026-10-26T08:00:00.000Z');
  });
});

describe('overnight and DST edges', () => {
  const nights = { timezone: 'Europe/Berlin', deny: ['daily 22:00-06:00'] };
  test('a daily range whose end is before its start runs into the next morning', () => {
    expect(state(nights, '2026-12-02T20:59:00Z').open).toBe(true);
    expect(state(nights, '2026-12-02T21:00:00Z')).toMatchObject({
      open: false,
      next: '2026-12-03T05:00:00.000Z',
    });
    expect(state(nights, '2026-12-03T04:59:00Z').open).toBe(false);
  });
  test('Sunday night of a Fri-Sun list still closes until Monday 06:00', () => {
    const s = { timezone: 'UTC', deny: ['Fri-Sun 20:00-06:00'] };
    expect(state(s, '2026-12-07T05:00:00Z').open).toBe(false);
    expect(state(s, '2026-12-08T05:00:00Z').open).toBe(true);
  });
  const hour = { timezone: 'Europe/Berlin', deny: ['daily 02:00-03:00'] };
  test('a local hour the spring change skips never closes anything', () => {
    // 29 March 2026: 01:59 CET is followed by 03:00 CEST.
    expect(state(hour, '2026-03-29T00:30:00Z')).toMatchObject({
      open: true,
      next: '2026-03-30T00:00:00.000Z',
    });
  });
  test('a local hour the autumn change repeats is closed both times', () => {
    // 25 October 2026: 02:00-03:00 CEST (00:00-01:00 UTC), then 02:00-03:00 CET (01:00-02:00 UTC).
    expect(state(hour, '2026-10-25T00:30:00Z')).toMatchObject({
      open: false,
      next: '2026-10-25T02:00:00.000Z',
    });
    expect(state(hour, '2026-10-25T01:30:00Z').open).toBe(false);
  });
});

describe('holidays', () => {
  const christmas = { ...office, holidays: ['2026-12-24', { date: '2026-12-25', name: 'Christmas' }] };
  test('a holiday closes the whole local date and the next window is the next working day', () => {
    expect(state(christmas, '2026-12-24T09:00:00Z')).toMatchObject({
      open: false,
      reason: 'holiday 2026-12-24',
      next: '2026-12-28T08:00:00.000Z',
    });
    expect(state(christmas, '2026-12-25T09:00:00Z').reason).toBe('holiday 2026-12-25 (Christmas)');
  });
  test('the local date counts, not the UTC one', () => {
    // 23:30 UTC on the 23rd is already the 24th in Tokyo.
    const tokyo = { timezone: 'Asia/Tokyo', holidays: ['2026-12-24'] };
    expect(state(tokyo, '2026-12-23T14:59:00Z').open).toBe(true);
    expect(state(tokyo, '2026-12-23T15:00:00Z')).toMatchObject({
      open: false,
      next: '2026-12-24T15:00:00.000Z',
    });
  });
});

describe('wording', () => {
  test('zones are named as people there say them, with the date beyond a week', () => {
    const now = at('2026-12-02T12:00:00Z');
    expect(formatLocal(at('2026-12-07T13:00:00Z'), 'America/New_York', now)).toBe('Mon 08:00 EST');
    expect(formatLocal(at('2027-01-04T07:00:00Z'), 'Europe/Berlin', now)).toBe('Mon 4 Jan 08:00 CET');
    expect(formatLocal(at('2026-12-03T03:30:00Z'), 'Asia/Kolkata', now)).toBe('Thu 09:00 GMT+5:30');
  });
  test('a schedule that never opens says so (no next change within a year)', () => {
    const s = state({ timezone: 'UTC', deny: ['daily 00:00-24:00'] }, '2026-12-02T12:00:00Z');
    expect(s).toMatchObject({ open: false });
    expect(s.nextChange).toBeUndefined();
  });
});

describe('parsing refuses what it cannot read, naming it', () => {
  test.each([
    ['Mon-Fri 9-16', 'is not a rule such as'],
    ['Funday 09:00-10:00', 'names the day "Funday"'],
    ['Mon 25:00-26:00', 'has the time "25:00"'],
    ['daily 10:00-10:00', 'starts where it ends'],
  ])('%s', (rule, message) => {
    expect(() => parseRule(rule)).toThrow(ScheduleError);
    expect(() => parseRule(rule)).toThrow(message);
  });
  test('time zones and holidays', () => {
    expect(() => parseSchedule({ timezone: 'CET+1' })).toThrow('is not an IANA time zone');
    expect(() => parseSchedule({ timezone: 'Europe/Berlin', holidays: ['2026-02-30'] })).toThrow(
      'the holiday "2026-02-30" is not a date YYYY-MM-DD',
    );
    // Intl takes an offset, which has no DST; the docs promise IANA names only.
    expect(() => parseSchedule({ timezone: '+01:00' })).toThrow('is an offset, not an IANA time zone');
    expect(() => parseSchedule({ timezone: 'UTC', holidays: [20261224 as unknown as string] })).toThrow(
      'the holiday 20261224 is not a date YYYY-MM-DD',
    );
  });
  test('day names and lists', () => {
    const r = parseRule('Monday,Wed,Fri-Sun 10:00 to 11:30');
    expect(r).toMatchObject({ kind: 'daily', from: 600, to: 690 });
    expect([...(r as { days: ReadonlySet<number> }).days].sort()).toEqual([0, 1, 3, 5, 6]);
    expect(parseRule('weekdays 09:00-17:00')).toMatchObject({ kind: 'daily' });
  });
});
