/**
 * Deploy windows: when an environment may change, as allow and deny rules on the wall clock of
 * one IANA time zone, plus holidays (whole local dates, denied). A rule reads as people write it:
 *
 *   Mon-Fri 09:00-16:00        daily on those days; 22:00-06:00 runs overnight into the next day
 *   Fri 12:00 - Mon 08:00      one weekly range, across days
 *   daily 00:00-24:00          every day (daily or *)
 *
 * Rules are evaluated on local wall-clock time (Intl), so "09:00" stays 09:00 across a DST change;
 * a local time skipped by the spring change never occurs, and one repeated in autumn counts once
 * per occurrence, as a person reading a clock would see it.
 */

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

const MINUTES_PER_DAY = 1440;

/** A time range on the week: daily on some days, or one range from a day and time to another. */
export type Rule =
  | { kind: 'daily'; text: string; days: ReadonlySet<number>; from: number; to: number }
  | { kind: 'weekly'; text: string; from: number; to: number };

export interface Holiday {
  /** A local date, YYYY-MM-DD. */
  date: string;
  name?: string;
}

export interface Schedule {
  timezone: string;
  allow: Rule[];
  deny: Rule[];
  holidays: Holiday[];
}

/** What a schedule says about one instant. */
export interface WindowState {
  open: boolean;
  /** Why it is closed: the deny rule, the holiday, or "outside <allow rules>". */
  reason?: string;
  /** When the window next opens (closed), or next closes (open); undefined when it never does within a year. */
  nextChange?: number;
}

export class ScheduleError extends Error {}

const DAY_INDEX: Record<string, number> = Object.fromEntries(WEEKDAYS.map((d, i) => [d.toLowerCase(), i]));

function parseDay(text: string, rule: string): number {
  const day = DAY_INDEX[text.slice(0, 3).toLowerCase()];
  const full = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
  if (day === undefined || !(text.length === 3 || full[day] === text.toLowerCase()))
    throw new ScheduleError(`${JSON.stringify(rule)} names the day ${JSON.stringify(text)}`);
  return day;
}

function parseTime(text: string, rule: string, allow24: boolean): number {
  const m = /^(\d{1,2}):(\d{2})$/.exec(text);
  const minutes = m ? Number(m[1]) * 60 + Number(m[2]) : Number.NaN;
  if (!m || Number(m[2]) > 59 || minutes > (allow24 ? MINUTES_PER_DAY : MINUTES_PER_DAY - 1))
    throw new ScheduleError(`${JSON.stringify(rule)} has the time ${JSON.stringify(text)}`);
  return minutes;
}

function parseDays(text: string, rule: string): Set<number> {
  if (text === '*' || /^(daily|every ?day)$/i.test(text)) return new Set([0, 1, 2, 3, 4, 5, 6]);
  if (/^weekdays?$|^workdays?$/i.test(text)) return new Set([1, 2, 3, 4, 5]);
  if (/^weekends?$/i.test(text)) return new Set([0, 6]);
  const days = new Set<number>();
  for (const part of text.split(',')) {
    const [a, b] = part.trim().split('-');
    const start = parseDay(a!.trim(), rule);
    if (b === undefined) {
      days.add(start);
      continue;
    }
    const end = parseDay(b.trim(), rule);
    for (let d = start; ; d = (d + 1) % 7) {
      days.add(d);
      if (d === end) break;
    }
  }
  return days;
}

export const RULE_FORMS =
  'a rule such as "Mon-Fri 09:00-16:00", "daily 22:00-06:00" or "Fri 12:00 - Mon 08:00"';

/** Parses one rule; throws ScheduleError naming the rule and what is wrong. */
export function parseRule(text: string): Rule {
  const rule = text.trim().replace(/\s+/g, ' ');
  const weekly = /^([A-Za-z]+) (\d{1,2}:\d{2}) ?(?:-|–|to) ?([A-Za-z]+) (\d{1,2}:\d{2})$/.exec(rule);
  if (weekly) {
    const from = parseDay(weekly[1]!, rule) * MINUTES_PER_DAY + parseTime(weekly[2]!, rule, false);
    const to = parseDay(weekly[3]!, rule) * MINUTES_PER_DAY + parseTime(weekly[4]!, rule, true);
    if (from === to) throw new ScheduleError(`${JSON.stringify(rule)} starts where it ends`);
    return { kind: 'weekly', text: rule, from, to };
  }
  const daily = /^(.+?) (\d{1,2}:\d{2}) ?(?:-|–|to) ?(\d{1,2}:\d{2})$/.exec(rule);
  if (daily) {
    const from = parseTime(daily[2]!, rule, false);
    const to = parseTime(daily[3]!, rule, true);
    if (from === to) throw new ScheduleError(`${JSON.stringify(rule)} starts where it ends`);
    return { kind: 'daily', text: rule, days: parseDays(daily[1]!, rule), from, to };
  }
  throw new ScheduleError(`${JSON.stringify(rule)} is not ${RULE_FORMS}`);
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return zone.length > 0;
  } catch {
    return false;
  }
}

export interface ScheduleSpec {
  timezone?: string;
  allow?: string[];
  deny?: string[];
  holidays?: (string | Holiday)[];
}

/** Builds a schedule from its written form; throws ScheduleError naming the faulty part. */
export function parseSchedule(spec: ScheduleSpec): Schedule {
  const timezone = spec.timezone ?? 'UTC';
  // Intl also takes a fixed offset such as +01:00, which has no DST: the wall clock the rules
  // are read on would be an hour off for half the year.
  if (typeof timezone === 'string' && /^[+-]\d/.test(timezone))
    throw new ScheduleError(
      `the time zone ${JSON.stringify(timezone)} is an offset, not an IANA time zone such as Europe/Berlin (an offset has no DST)`,
    );
  if (!isTimeZone(timezone))
    throw new ScheduleError(`the time zone ${JSON.stringify(timezone)} is not an IANA time zone`);
  const holidays = (spec.holidays ?? []).map((h) => {
    const holiday = typeof h === 'string' ? { date: h } : h;
    if (typeof holiday !== 'object' || holiday === null || typeof holiday.date !== 'string')
      throw new ScheduleError(`the holiday ${JSON.stringify(h)} is not a date YYYY-MM-DD or {date, name}`);
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(holiday.date);
    const d = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : undefined;
    if (!d || d.toISOString().slice(0, 10) !== holiday.date)
      throw new ScheduleError(`the holiday ${JSON.stringify(holiday.date)} is not a date YYYY-MM-DD`);
    return holiday;
  });
  return {
    timezone,
    allow: (spec.allow ?? []).map(parseRule),
    deny: (spec.deny ?? []).map(parseRule),
    holidays,
  };
}

interface LocalTime {
  date: string;
  weekday: number;
  minute: number;
}

/**
 * Local wall-clock time of an instant. The zone's offset is looked up once per quarter hour of UTC
 * (every real zone's transitions fall on quarter hours), so scanning a year minute by minute costs
 * a few thousand Intl calls.
 */
class Zone {
  private readonly format: Intl.DateTimeFormat;
  private readonly offsets = new Map<number, number>();

  constructor(name: string) {
    this.format = new Intl.DateTimeFormat('en-US', {
      timeZone: name,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
    });
  }

  /** Minutes to add to UTC for local time at `t`. */
  offset(t: number): number {
    const quarter = Math.floor(t / 900_000);
    let offset = this.offsets.get(quarter);
    if (offset === undefined) {
      const at = quarter * 900_000;
      const p = Object.fromEntries(this.format.formatToParts(at).map((x) => [x.type, x.value]));
      const local = Date.UTC(+p.year!, +p.month! - 1, +p.day!, +p.hour!, +p.minute!);
      offset = Math.round((local - at) / 60_000);
      this.offsets.set(quarter, offset);
    }
    return offset;
  }

  /**
   * An instant up to which the offset at `t` holds: the next transition, or a day later when there
   * is none before (no real zone changes its offset twice in a day).
   */
  offsetStableUntil(t: number): number {
    const day = 86_400_000;
    const offset = this.offset(t);
    if (this.offset(t + day) === offset) return t + day;
    let lo = Math.floor(t / 900_000);
    let hi = Math.floor((t + day) / 900_000);
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (this.offset(mid * 900_000) === offset) lo = mid;
      else hi = mid;
    }
    return hi * 900_000;
  }

  local(t: number): LocalTime {
    const d = new Date(Math.floor(t / 60_000) * 60_000 + this.offset(t) * 60_000);
    return {
      date: d.toISOString().slice(0, 10),
      weekday: d.getUTCDay(),
      minute: d.getUTCHours() * 60 + d.getUTCMinutes(),
    };
  }
}

function inRule(rule: Rule, at: LocalTime): boolean {
  if (rule.kind === 'weekly') {
    const m = at.weekday * MINUTES_PER_DAY + at.minute;
    return rule.from < rule.to ? m >= rule.from && m < rule.to : m >= rule.from || m < rule.to;
  }
  if (rule.from < rule.to) return rule.days.has(at.weekday) && at.minute >= rule.from && at.minute < rule.to;
  // Overnight: from the start on a listed day to the end on the day after it.
  return (
    (rule.days.has(at.weekday) && at.minute >= rule.from) ||
    (rule.days.has((at.weekday + 6) % 7) && at.minute < rule.to)
  );
}

function closedBecause(schedule: Schedule, at: LocalTime): string | undefined {
  const holiday = schedule.holidays.find((h) => h.date === at.date);
  if (holiday) return `holiday ${holiday.date}${holiday.name ? ` (${holiday.name})` : ''}`;
  const deny = schedule.deny.find((r) => inRule(r, at));
  if (deny) return `deny ${deny.text}`;
  if (schedule.allow.length > 0 && !schedule.allow.some((r) => inRule(r, at)))
    return `outside ${schedule.allow.map((r) => r.text).join(', ')}`;
  return undefined;
}

const zones = new Map<string, Zone>();
function zoneOf(name: string): Zone {
  let zone = zones.get(name);
  if (!zone) {
    zone = new Zone(name);
    zones.set(name, zone);
  }
  return zone;
}

/** Whether deploys may happen at `now`, why not, and when that changes (looked for up to a year ahead). */
export function windowState(schedule: Schedule, now: number): WindowState {
  const zone = zoneOf(schedule.timezone);
  const reason = closedBecause(schedule, zone.local(now));
  const open = reason === undefined;
  const limit = now + 366 * 86_400_000;
  // The answer changes only at a rule's edge or a local midnight (holidays), on whole local
  // minutes; between offset transitions local time moves with UTC, so the scan jumps from edge
  // to edge and stops at each transition.
  const edges = [0, ...[...schedule.allow, ...schedule.deny].flatMap((r) => [r.from, r.to])].map(
    (e) => e % MINUTES_PER_DAY,
  );
  let t = Math.floor(now / 60_000) * 60_000;
  while (t <= limit) {
    const m = zone.local(t).minute;
    const toEdge = Math.min(
      ...edges.map((e) => (e - m + MINUTES_PER_DAY) % MINUTES_PER_DAY || MINUTES_PER_DAY),
    );
    t = Math.min(t + toEdge * 60_000, zone.offsetStableUntil(t));
    if ((closedBecause(schedule, zone.local(t)) === undefined) !== open)
      return { open, ...(reason ? { reason } : {}), nextChange: t };
  }
  return { open, ...(reason ? { reason } : {}) };
}

/** Whether a schedule restricts anything at all. */
export function isUnrestricted(schedule: Schedule): boolean {
  return schedule.allow.length === 0 && schedule.deny.length === 0 && schedule.holidays.length === 0;
}

/**
 * An instant as people on the team read it in the schedule's zone: "Mon 08:00 CET", with the date
 * when it is not within the coming week ("Mon 4 Jan 08:00 CET").
 */
export function formatLocal(t: number, timezone: string, now: number): string {
  const options: Intl.DateTimeFormatOptions = {
    timeZone: timezone,
    weekday: 'short',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'short',
  };
  if (t - now >= 6 * 86_400_000) Object.assign(options, { day: 'numeric', month: 'short' });
  // en-US names American zones (EST), en-GB European ones (CET); either falls back to GMT+1.
  const us = partsOf(t, 'en-US', options);
  const parts = /^GMT[+-]/.test(us.timeZoneName ?? '') ? partsOf(t, 'en-GB', options) : us;
  const date = parts.day ? ` ${parts.day} ${parts.month}` : '';
  return `${parts.weekday}${date} ${parts.hour}:${parts.minute} ${parts.timeZoneName}`;
}

function partsOf(t: number, locale: string, options: Intl.DateTimeFormatOptions): Record<string, string> {
  return Object.fromEntries(
    new Intl.DateTimeFormat(locale, options).formatToParts(t).map((p) => [p.type, p.value]),
  );
}
