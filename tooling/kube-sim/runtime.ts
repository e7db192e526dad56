/**
 * What the controllers share: scaled time, a coalescing work queue, an event recorder and the
 * store. Controllers are synchronous reconcile functions; nothing here awaits between reading and
 * writing the store, so reconciles never interleave.
 */
import { setMaxListeners } from 'node:events';
import type { Clock } from '../../packages/core/index.ts';
import { clone } from './patch.ts';
import { resourceByKind } from './resources.ts';
import { randomSuffix, rfc3339, type Store } from './store.ts';
import type { KubeObject } from './types.ts';

export class SimTime {
  readonly clock: Clock;
  readonly scale: number;
  private readonly stop = new AbortController();
  private timers = 0;

  constructor(clock: Clock, scale: number) {
    this.clock = clock;
    this.scale = scale > 0 ? scale : 1;
    setMaxListeners(0, this.stop.signal);
  }

  now(): number {
    return this.clock.now();
  }

  /** Simulated milliseconds elapsed since a real timestamp. */
  simSince(realMs: number): number {
    return (this.clock.now() - realMs) * this.scale;
  }

  /** Runs fn after `simMs` simulated milliseconds; returns a cancel function. */
  after(simMs: number, fn: () => void): () => void {
    let cancelled = false;
    this.timers++;
    this.clock.sleep(Math.max(0, simMs / this.scale), this.stop.signal).then(
      () => {
        this.timers--;
        if (!cancelled && !this.stop.signal.aborted) fn();
      },
      () => {
        this.timers--;
      },
    );
    return () => {
      cancelled = true;
    };
  }

  get pendingTimers(): number {
    return this.timers;
  }

  close(): void {
    this.stop.abort(new Error('kube-sim closed'));
  }
}

/** Deduplicating queue: a key enqueued many times before the drain runs once. */
export class WorkQueue {
  private readonly pending = new Map<string, { fn: () => void; readyAt: number }>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private immediate = false;
  private closed = false;
  onError: (key: string, error: unknown) => void = () => {};
  /**
   * Real milliseconds between a change and the reconcile it triggers: controllers watch the API
   * server, so a GET right after a write sees the old status (observedGeneration lags) as on a
   * real cluster. Every item waits its own latency, also when a drain is already due.
   */
  latencyMs: number;

  constructor(latencyMs = 0) {
    this.latencyMs = latencyMs;
  }

  enqueue(key: string, fn: () => void): void {
    if (this.closed) return;
    const readyAt = performance.now() + this.latencyMs;
    const existing = this.pending.get(key);
    // Like client-go's workqueue: a key already waiting keeps its place and runs the latest fn.
    this.pending.set(key, { fn, readyAt: existing ? existing.readyAt : readyAt });
    this.schedule(existing ? existing.readyAt : readyAt);
  }

  private schedule(at: number): void {
    if (this.closed) return;
    if (this.latencyMs <= 0) {
      if (!this.immediate) {
        this.immediate = true;
        setImmediate(() => this.drain());
      }
      return;
    }
    if (at >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.drain(), Math.max(0, at - performance.now()));
  }

  private drain(): void {
    this.immediate = false;
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    let rounds = 0;
    while (!this.closed && rounds++ < 10_000) {
      const now = performance.now();
      const next = [...this.pending].find(([, item]) => item.readyAt <= now);
      if (!next) break;
      const [key, item] = next;
      this.pending.delete(key);
      try {
        item.fn();
      } catch (error) {
        this.onError(key, error);
      }
    }
    if (this.pending.size > 0 && !this.closed) {
      this.schedule(Math.min(...[...this.pending.values()].map((i) => i.readyAt)));
    }
  }

  get size(): number {
    return this.pending.size;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.pending.clear();
  }
}

const EVENTS = resourceByKind('Event');
const NAMESPACES = resourceByKind('Namespace');

export interface EventSource {
  component: string;
  host?: string;
}

/** Records core/v1 Events the way the real components do, aggregating repeats into count. */
export class EventRecorder {
  private readonly store: Store;
  private readonly time: SimTime;
  private lastStamp = 0;
  /** Aggregation index: involved uid, reason and message to the event's name. */
  private readonly byKey = new Map<string, string>();

  constructor(store: Store, time: SimTime) {
    this.store = store;
    this.time = time;
  }

  record(
    involved: KubeObject,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    source: EventSource,
    fieldPath?: string,
  ): void {
    const ns = involved.metadata.namespace ?? 'default';
    if (!this.store.get(NAMESPACES, undefined, ns)) return;
    const now = rfc3339(this.time.now());
    const key = `${involved.metadata.uid}|${reason}|${message}`;
    const knownName = this.byKey.get(key);
    const existing = knownName ? this.store.get(EVENTS, ns, knownName) : undefined;
    if (existing) {
      const next = clone(existing);
      next['count'] = ((existing['count'] as number) ?? 1) + 1;
      next['lastTimestamp'] = now;
      delete next.metadata.resourceVersion;
      this.store.update(EVENTS, next);
      return;
    }
    // Real event names end in the creation time in hex nanoseconds, so they sort by time.
    this.lastStamp = Math.max(this.lastStamp + 1, this.time.now() * 1_000_000);
    const name = `${involved.metadata.name}.${this.lastStamp.toString(16)}`;
    const event: KubeObject = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace: ns },
      involvedObject: {
        kind: involved.kind,
        namespace: ns,
        name: involved.metadata.name,
        uid: involved.metadata.uid,
        apiVersion: involved.apiVersion,
        resourceVersion: involved.metadata.resourceVersion,
        ...(fieldPath ? { fieldPath } : {}),
      },
      reason,
      message,
      source: { component: source.component, ...(source.host ? { host: source.host } : {}) },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      type,
      eventTime: null,
      reportingComponent: source.component,
      reportingInstance: source.host ?? '',
    };
    if (this.store.get(EVENTS, ns, name)) event.metadata.name = `${name}${randomSuffix(3)}`;
    this.store.create(EVENTS, event);
    this.byKey.set(key, event.metadata.name!);
    if (this.byKey.size > 50_000) this.byKey.delete(this.byKey.keys().next().value!);
  }
}
