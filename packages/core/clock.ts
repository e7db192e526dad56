/** Time as the engines see it, so tests can run a 15-minute soak in milliseconds. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new Error('aborted');
}

/** Node fires a timer longer than 2^31-1 ms (24.8 days) at once; longer sleeps are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep(ms, signal) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(abortReason(signal));
      const wakeAt = Date.now() + (Number.isFinite(ms) ? Math.max(0, ms) : Number.MAX_SAFE_INTEGER);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => {
        clearTimeout(timer);
        reject(abortReason(signal!));
      };
      const step = () => {
        const left = wakeAt - Date.now();
        if (left <= 0) {
          signal?.removeEventListener('abort', onAbort);
          resolve();
          return;
        }
        timer = setTimeout(step, Math.min(left, MAX_TIMER_MS));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      // Even a zero sleep yields to the event loop, as setTimeout(0) did: polling loops rely on it.
      timer = setTimeout(step, Math.min(Math.max(0, wakeAt - Date.now()), MAX_TIMER_MS));
    });
  },
};

interface Sleeper {
  wakeAt: number;
  resolve: () => void;
}

/**
 * A clock that only moves when told to. `advance` wakes sleepers in time order and lets the
 * promise chains they release run before moving further, so code under test sees a consistent
 * timeline.
 */
export class ManualClock implements Clock {
  private current: number;
  private sleepers: Sleeper[] = [];

  constructor(start = 0) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(abortReason(signal));
      const sleeper: Sleeper = { wakeAt: this.current + Math.max(0, ms), resolve };
      this.sleepers.push(sleeper);
      signal?.addEventListener(
        'abort',
        () => {
          this.sleepers = this.sleepers.filter((s) => s !== sleeper);
          reject(abortReason(signal));
        },
        { once: true },
      );
    });
  }

  /** How many sleeps are waiting; lets a test wait until the code under test has gone to sleep. */
  get pending(): number {
    return this.sleepers.length;
  }

  async advance(ms: number): Promise<void> {
    const target = this.current + ms;
    for (;;) {
      await flushMicrotasks();
      this.sleepers.sort((a, b) => a.wakeAt - b.wakeAt);
      const next = this.sleepers[0];
      if (!next || next.wakeAt > target) break;
      this.sleepers.shift();
      this.current = Math.max(this.current, next.wakeAt);
      next.resolve();
    }
    this.current = target;
    await flushMicrotasks();
  }

  /**
   * Runs `work` to completion while moving time forward whenever it sleeps and nothing else is
   * going on. Real I/O (HTTP to a local server) still happens in real time in between; the clock
   * only jumps over the sleeps, so a 15-minute soak takes as long as its requests.
   */
  async drive<T>(work: Promise<T>): Promise<T> {
    let settled = false;
    const done = work.finally(() => {
      settled = true;
    });
    done.catch(() => {});
    while (!settled) {
      if (this.sleepers.length > 0) {
        const next = Math.min(...this.sleepers.map((s) => s.wakeAt));
        await this.advance(Math.max(0, next - this.current));
      } else {
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    }
    return done;
  }

  /** Advance until nothing sleeps or `limitMs` has passed; returns the time moved. */
  async runAll(limitMs = 86_400_000): Promise<number> {
    const start = this.current;
    await flushMicrotasks();
    while (this.sleepers.length > 0 && this.current - start < limitMs) {
      const next = Math.min(...this.sleepers.map((s) => s.wakeAt));
      await this.advance(Math.max(0, next - this.current));
    }
    return this.current - start;
  }
}

async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Real time, sped up: `now()` runs `factor` times faster than the wall clock and sleeps are
 * `factor` times shorter. The local rehearsal uses it so a workflow's real settings (a 15-minute
 * soak) play out in seconds; an action picks it only when PIPELINE_TIME_SCALE is set.
 */
class ScaledClock implements Clock {
  readonly factor: number;
  private readonly origin = Date.now();

  constructor(factor: number) {
    if (!Number.isFinite(factor) || factor <= 0)
      throw new Error(`time scale must be a positive number, got ${factor}`);
    this.factor = factor;
  }

  now(): number {
    return this.origin + (Date.now() - this.origin) * this.factor;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return systemClock.sleep(ms / this.factor, signal);
  }
}

/** The clock an action runs on: the system clock, or a scaled one under PIPELINE_TIME_SCALE. */
export function clockFromEnvironment(env: NodeJS.ProcessEnv = process.env): Clock {
  const raw = env.PIPELINE_TIME_SCALE;
  if (!raw) return systemClock;
  const factor = Number(raw);
  return Number.isFinite(factor) && factor > 0 && factor !== 1 ? new ScaledClock(factor) : systemClock;
}
