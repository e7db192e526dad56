import { describe, expect, test } from '@jest/globals';
import { ManualClock, parseRetryAfter, RetriesExhaustedError, retry } from '../../packages/core/index.ts';

function httpError(status: number, retryAfterMs?: number) {
  return Object.assign(new Error(`HTTP ${status}`), { status, retryAfterMs });
}

describe('retry', () => {
  test('retries 5xx with growing jittered backoff and returns the first success', async () => {
    const clock = new ManualClock();
    const delays: number[] = [];
    let calls = 0;
    const done = retry(
      async () => {
        calls++;
        if (calls < 4) throw httpError(503);
        return 'ok';
      },
      { clock, random: () => 1, baseDelayMs: 100, onRetry: ({ delayMs }) => delays.push(delayMs) },
    );
    await clock.runAll();
    await expect(done).resolves.toBe('ok');
    expect(calls).toBe(4);
    expect(delays).toEqual([100, 200, 400]);
  });

  test('waits exactly what Retry-After asks instead of its own backoff', async () => {
    const clock = new ManualClock();
    const delays: number[] = [];
    let calls = 0;
    const done = retry(
      async () => {
        if (++calls === 1) throw httpError(429, 7000);
        return calls;
      },
      { clock, random: () => 0, onRetry: ({ delayMs }) => delays.push(delayMs) },
    );
    await clock.runAll();
    await expect(done).resolves.toBe(2);
    expect(delays).toEqual([7000]);
    expect(clock.now()).toBe(7000);
  });

  test('does not retry a 4xx that will not change', async () => {
    let calls = 0;
    await expect(
      retry(async () => {
        calls++;
        throw httpError(404);
      }),
    ).rejects.toThrow('HTTP 404');
    expect(calls).toBe(1);
  });

  test('gives up after the attempts, saying how many and keeping the cause', async () => {
    const clock = new ManualClock();
    const done = retry(
      async () => {
        throw httpError(500);
      },
      { clock, attempts: 3 },
    );
    done.catch(() => {});
    await clock.runAll();
    await expect(done).rejects.toBeInstanceOf(RetriesExhaustedError);
    await expect(done).rejects.toThrow('HTTP 500 (gave up after 3 attempts)');
  });

  test('never sleeps past the deadline', async () => {
    const clock = new ManualClock();
    const done = retry(
      async () => {
        throw httpError(429, 60_000);
      },
      { clock, deadline: 30_000 },
    );
    await expect(done).rejects.toThrow(/gave up after 1 attempt/);
    expect(clock.now()).toBe(0);
  });

  test('retries connection resets', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const done = retry(
      async () => {
        if (++calls === 1) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
        return 'ok';
      },
      { clock },
    );
    await clock.runAll();
    await expect(done).resolves.toBe('ok');
  });
});

describe('parseRetryAfter', () => {
  test('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(
      parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')),
    ).toBe(10_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});
