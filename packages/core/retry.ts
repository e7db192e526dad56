import { type Clock, systemClock } from './clock.ts';
import { errorMessage } from './errors.ts';

/** What a failed attempt means for the next one. */
export type RetryDecision =
  | { retry: false }
  | {
      retry: true;
      reason: string /** the server's own wait (Retry-After), which wins over backoff */;
      afterMs?: number;
    };

export interface RetryOptions {
  /** Total attempts including the first (default 5). */
  attempts?: number;
  /** Backoff base and cap (defaults 500 ms and 30 s). The wait before attempt n is a random share of min(cap, base·2ⁿ) ("full jitter"). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Never wait past this point in clock time; the last error is thrown instead. */
  deadline?: number;
  /** The longest Retry-After we honour; a server asking for more is not waited for (default 5 min). */
  maxRetryAfterMs?: number;
  classify?: (error: unknown) => RetryDecision;
  onRetry?: (info: { attempt: number; delayMs: number; reason: string; error: unknown }) => void;
  clock?: Clock;
  random?: () => number;
  signal?: AbortSignal;
}

/** Thrown when the attempts run out; keeps the last error as `cause` and says how often it tried. */
export class RetriesExhaustedError extends Error {
  readonly attempts: number;
  constructor(attempts: number, cause: unknown) {
    super(`${errorMessage(cause)} (gave up after ${attempts} attempt${attempts === 1 ? '' : 's'})`, {
      cause,
    });
    this.name = 'RetriesExhaustedError';
    this.attempts = attempts;
  }
}

/** Status codes worth another try: throttling and the server-side failures that usually pass. */
function isRetryableStatus(status: number): boolean {
  return (
    status === 408 ||
    status === 425 ||
    status === 429 ||
    status === 500 ||
    status === 502 ||
    status === 503 ||
    status === 504
  );
}

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
]);

/** Network-level failures (reset, refused, timed out), looked for on the error and its causes. */
export function isTransientNetworkError(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * `Retry-After` as milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
 * Returns undefined for anything else.
 */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value == null) return undefined;
  const text = String(value).trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The default classification: HTTP-looking errors by status, network errors by code. */
function defaultClassify(error: unknown): RetryDecision {
  const e = error as { status?: unknown; statusCode?: unknown; retryAfterMs?: unknown };
  const status =
    typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : undefined;
  if (status !== undefined) {
    if (!isRetryableStatus(status)) return { retry: false };
    const afterMs = typeof e.retryAfterMs === 'number' ? e.retryAfterMs : undefined;
    return { retry: true, reason: `HTTP ${status}`, ...(afterMs !== undefined ? { afterMs } : {}) };
  }
  if (isTransientNetworkError(error)) return { retry: true, reason: errorMessage(error) };
  return { retry: false };
}

/** Runs `operation` until it succeeds, a failure is not retryable, attempts run out or the deadline nears. */
export async function retry<T>(
  operation: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 5);
  const base = options.baseDelayMs ?? 500;
  const cap = options.maxDelayMs ?? 30_000;
  const maxRetryAfter = options.maxRetryAfterMs ?? 300_000;
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const classify = options.classify ?? defaultClassify;

  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      const decision = classify(error);
      if (!decision.retry) throw error;
      if (attempt >= attempts) throw new RetriesExhaustedError(attempt, error);
      let delayMs =
        decision.afterMs !== undefined
          ? decision.afterMs
          : Math.round(random() * Math.min(cap, base * 2 ** (attempt - 1)));
      if (decision.afterMs !== undefined && decision.afterMs > maxRetryAfter) {
        throw new RetriesExhaustedError(attempt, error);
      }
      if (options.deadline !== undefined) {
        const left = options.deadline - clock.now();
        if (left <= delayMs) throw new RetriesExhaustedError(attempt, error);
      }
      delayMs = Math.max(0, delayMs);
      options.onRetry?.({ attempt, delayMs, reason: decision.reason, error });
      await clock.sleep(delayMs, options.signal);
    }
  }
}
