/**
 * The one list-then-watch loop (client-go's UntilWithSync): every wait on the cluster and the
 * Lease lock go through it, so a dropped stream, a 410 Gone or an API fault is handled once.
 */
import {
  type Clock,
  errorMessage,
  isTransientNetworkError,
  type Logger,
  type RetryDecision,
  systemClock,
} from '../core/index.ts';
import { KubeApiError, type KubeClient } from './client.ts';
import type { KubeObject } from './resources.ts';

/** API faults worth another try: throttling, 5xx, a dropped connection. Anything else is an answer. */
export function transientKubeFault(error: unknown): RetryDecision {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    if (e instanceof KubeApiError)
      return [429, 500, 502, 503, 504].includes(e.status)
        ? { retry: true, reason: `HTTP ${e.status}` }
        : { retry: false };
    e = (e as { cause?: unknown }).cause;
  }
  return isTransientNetworkError(error) ? { retry: true, reason: errorMessage(error) } : { retry: false };
}

export type WatchChange<T> = { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: T };

export interface WatchUntilOptions<T extends KubeObject, R> {
  client: KubeClient;
  /** The collection: `/api/v1/namespaces/shop/pods`. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /**
   * Looks at every object seen so far (by name), after each list and after each change; a
   * result other than undefined ends the watch with it.
   */
  condition: (objects: ReadonlyMap<string, T>, change: WatchChange<T> | undefined) => R | undefined;
  /** Absolute time on `clock` when the watch gives up. */
  deadline?: number;
  clock?: Clock;
  signal?: AbortSignal;
  logger?: Logger;
  /** Lists that may fail in a row on API faults before the error is thrown (default 6). */
  relistAttempts?: number;
}

export type WatchOutcome<R> = { state: 'done'; value: R } | { state: 'deadline' } | { state: 'aborted' };

interface List<T> {
  items?: T[];
  metadata?: { resourceVersion?: string };
}

/**
 * Lists the collection, then watches from the list's resourceVersion until `condition` answers,
 * the deadline passes or the signal aborts. A 410 Gone (the watch fell behind the server's
 * history) lists again; an API fault lists again after a backoff, so no change is ever missed.
 */
export async function watchUntil<T extends KubeObject, R>(
  options: WatchUntilOptions<T, R>,
): Promise<WatchOutcome<R>> {
  const clock = options.clock ?? systemClock;
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  if (options.signal?.aborted) return { state: 'aborted' };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let timedOut = false;
  if (options.deadline !== undefined) {
    // The deadline sleeps on the injected clock, so a sped-up clock (the rehearsal) shortens it too.
    clock
      .sleep(Math.max(0, options.deadline - clock.now()), stop.signal)
      .then(() => {
        timedOut = true;
        stop.abort();
      })
      .catch(() => {});
  }
  const query = new URLSearchParams();
  if (options.labelSelector) query.set('labelSelector', options.labelSelector);
  if (options.fieldSelector) query.set('fieldSelector', options.fieldSelector);
  const listPath = query.size > 0 ? `${options.path}?${query}` : options.path;
  const objects = new Map<string, T>();
  let answer: { value: R } | undefined;
  let faults = 0;
  const ended = (): WatchOutcome<R> =>
    answer ? { state: 'done', value: answer.value } : timedOut ? { state: 'deadline' } : { state: 'aborted' };

  try {
    while (!stop.signal.aborted) {
      try {
        const list = await options.client.json<List<T>>('GET', listPath, { signal: stop.signal });
        objects.clear();
        for (const item of list.items ?? []) objects.set(item.metadata.name!, item);
        const first = options.condition(objects, undefined);
        if (first !== undefined) return { state: 'done', value: first };
        const result = await options.client.watch(options.path, {
          resourceVersion: list.metadata?.resourceVersion ?? '',
          ...(options.labelSelector ? { labelSelector: options.labelSelector } : {}),
          ...(options.fieldSelector ? { fieldSelector: options.fieldSelector } : {}),
          signal: stop.signal,
          onEvent: (type, raw) => {
            faults = 0;
            const object = raw as unknown as T;
            if (type === 'DELETED') objects.delete(object.metadata.name!);
            else if (type === 'ADDED' || type === 'MODIFIED') objects.set(object.metadata.name!, object);
            else return false;
            const value = options.condition(objects, { type, object });
            if (value === undefined) return false;
            answer = { value };
            return true;
          },
        });
        if (answer) return ended();
        if (result === 'gone') options.logger?.debug(`watch ${options.path}: 410 Gone, listing again`);
      } catch (error) {
        if (stop.signal.aborted) break;
        if (!transientKubeFault(error).retry || ++faults > (options.relistAttempts ?? 6)) throw error;
        const delay = Math.min(8000, 250 * 2 ** faults);
        options.logger?.debug(
          `watch ${options.path} failed (${errorMessage(error)}); listing again in ${delay} ms`,
        );
        await clock.sleep(delay, stop.signal).catch(() => {});
      }
    }
    return ended();
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    stop.abort();
  }
}
