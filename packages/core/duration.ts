import { InputError } from './errors.ts';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

const SECOND_MS = 1000;
const MINUTE_MS = 60 * SECOND_MS;
const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

/**
 * The maxima the suite documents for its durations. Every one stays below Node's timer limit
 * (2^31-1 ms, 24.8 days), and the clock chunks longer sleeps anyway, so no wait can wrap round to
 * "fire at once".
 */
export const DURATION_MAX = {
  /** Deadlines and timeouts: a rollout, a lock wait, a probe, a statement. */
  timeout: DAY_MS,
  /** Soak windows and step pauses: how long something must stay healthy. */
  window: 7 * DAY_MS,
} as const;

/** Text longer than this is not a duration anyone wrote by hand: refused before any arithmetic. */
const MAX_DURATION_TEXT = 32;

export const DURATION_FORM = 'a duration such as 500ms, 90s, 5m, 1h30m or 2d (a bare number is seconds)';

export interface DurationLimits {
  /** Largest value accepted, in ms; defaults to DURATION_MAX.timeout (24h). */
  maxMs?: number;
  minMs?: number;
}

/** The accepted form of a duration input with its bounds, for error messages and docs. */
export function durationForm(limits: DurationLimits = {}): string {
  const max = limits.maxMs ?? DURATION_MAX.timeout;
  const min = limits.minMs ? `at least ${formatDuration(limits.minMs)} and ` : '';
  return `${DURATION_FORM}, ${min}at most ${formatDuration(max)}`;
}

/**
 * The one parser for durations across the suite: `90s`, `5m`, `1h30m`, `250ms`, `2d`, or a bare
 * number of seconds (what most YAML authors mean by `timeout: 30`). Returns whole milliseconds,
 * always finite and within `limits` (24h unless the caller documents another maximum).
 */
export function parseDuration(value: string, inputName = 'duration', limits: DurationLimits = {}): number {
  // Units are lowercase, as in Go and Kubernetes: 1M would otherwise be a minute to us and a
  // month to the reader, so 1H and 1M are refused rather than read.
  const text = value.trim();
  const maxMs = limits.maxMs ?? DURATION_MAX.timeout;
  const accepted = durationForm({ ...limits, maxMs });
  const shown =
    text.length > MAX_DURATION_TEXT ? `${JSON.stringify(value.slice(0, 20))}...` : JSON.stringify(value);
  if (text.length > MAX_DURATION_TEXT)
    throw new InputError(
      inputName,
      `has ${shown} (${text.length} characters), which is too long for a duration`,
      accepted,
    );
  let total: number;
  if (/^\d+(?:\.\d+)?$/.test(text)) {
    total = Number(text) * 1000;
  } else {
    if (!DURATION.test(text))
      throw new InputError(
        inputName,
        `has ${shown}, which is not a duration${DURATION.test(text.toLowerCase()) ? ' (units are lowercase: ms, s, m, h, d)' : ''}`,
        accepted,
      );
    total = 0;
    for (const [, amount, unit] of text.matchAll(PART)) total += Number(amount) * UNIT_MS[unit!]!;
  }
  if (!Number.isFinite(total) || total > maxMs)
    throw new InputError(inputName, `has ${shown}, which is longer than ${formatDuration(maxMs)}`, accepted);
  const ms = Math.round(total);
  if (limits.minMs !== undefined && ms < limits.minMs)
    throw new InputError(
      inputName,
      `has ${shown}, which is shorter than ${formatDuration(limits.minMs)}`,
      accepted,
    );
  return ms;
}

/** The inverse of parseDuration for messages and summaries: 5400000 → "1h30m", 1500 → "1.5s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(1))}s`;
  let rest = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) parts.push(`${n}${unit}`);
    rest -= n * size;
  }
  return parts.join('');
}
