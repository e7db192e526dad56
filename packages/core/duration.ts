import { InputError } from './errors.ts';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

export const DURATION_FORM = 'a duration such as 500ms, 90s, 5m, 1h30m or 2d (a bare number is seconds)';

/**
 * The one parser for durations across the suite: `90s`, `5m`, `1h30m`, `250ms`, `2d`, or a bare
 * number of seconds (what most YAML authors mean by `timeout: 30`). Returns milliseconds.
 */
export function parseDuration(value: string, inputName = 'duration'): number {
  const text = value.trim().toLowerCase();
  if (/^\d+(?:\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  if (!DURATION.test(text)) {
    throw new InputError(inputName, `has ${JSON.stringify(value)}, which is not a duration`, DURATION_FORM);
  }
  let total = 0;
  for (const [, amount, unit] of text.matchAll(PART)) total += Number(amount) * UNIT_MS[unit!]!;
  return Math.round(total);
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
