/**
 * The object store: one global resourceVersion counter, a bounded history of changes for watch
 * resumption, and synchronous change listeners for controllers and open watches. Stored objects
 * are never mutated in place; every write replaces the object.
 */
import { randomUUID } from 'node:crypto';
import { clone, deepEqual } from './patch.ts';
import { apiVersionOf, type ResourceInfo } from './resources.ts';
import { alreadyExists, conflict, notFound, STALE_OBJECT } from './status.ts';
import type { KubeObject } from './types.ts';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  rv: number;
  type: EventType;
  resource: ResourceInfo;
  object: KubeObject;
  /** The object before this change (for MODIFIED and DELETED). */
  previous: KubeObject | undefined;
}

export type StoreListener = (event: StoreEvent) => void;

export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function keyOf(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

export class Store {
  private rv = 1000;
  private readonly tables = new Map<ResourceInfo, Map<string, KubeObject>>();
  private readonly history: StoreEvent[] = [];
  private readonly listeners = new Set<StoreListener>();
  private readonly historySize: number;
  readonly now: () => number;

  constructor(options: { historySize?: number; now?: () => number } = {}) {
    this.historySize = options.historySize ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  get resourceVersion(): number {
    return this.rv;
  }

  /** The oldest resourceVersion a watch can still resume from. */
  get oldestResumable(): number {
    return this.history[0] ? this.history[0].rv - 1 : this.rv;
  }

  /** Events after `rv`, in order; undefined when history no longer reaches back that far. */
  eventsSince(rv: number): StoreEvent[] | undefined {
    if (rv >= this.rv) return [];
    if (rv < this.oldestResumable) return undefined;
    const out: StoreEvent[] = [];
    for (const e of this.history) if (e.rv > rv) out.push(e);
    return out;
  }

  /** Forget history up to now, so that any older resourceVersion is too old (test hook for 410 Gone). */
  compact(): void {
    this.history.length = 0;
  }

  subscribe(listener: StoreListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private table(r: ResourceInfo): Map<string, KubeObject> {
    let t = this.tables.get(r);
    if (!t) {
      t = new Map();
      this.tables.set(r, t);
    }
    return t;
  }

  get(r: ResourceInfo, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.table(r).get(keyOf(r.namespaced ? namespace : undefined, name));
  }

  mustGet(r: ResourceInfo, namespace: string | undefined, name: string): KubeObject {
    const obj = this.get(r, namespace, name);
    if (!obj) throw notFound(r, name);
    return obj;
  }

  list(r: ResourceInfo, namespace?: string): KubeObject[] {
    const out: KubeObject[] = [];
    for (const obj of this.table(r).values()) {
      if (namespace === undefined || obj.metadata.namespace === namespace) out.push(obj);
    }
    return out;
  }

  /** Every object of every type (garbage collection, namespace deletion). */
  *all(): Generator<{ resource: ResourceInfo; object: KubeObject }> {
    for (const [resource, t] of this.tables) for (const object of t.values()) yield { resource, object };
  }

  private emit(type: EventType, resource: ResourceInfo, object: KubeObject, previous?: KubeObject): void {
    const event: StoreEvent = { rv: this.rv, type, resource, object, previous };
    this.history.push(event);
    if (this.history.length > this.historySize)
      this.history.splice(0, this.history.length - this.historySize);
    for (const l of [...this.listeners]) l(event);
  }

  /** Fills in identity and bookkeeping; returns the object as it would be stored (without storing it). */
  prepareCreate(r: ResourceInfo, input: KubeObject): KubeObject {
    const obj = clone(input);
    obj.apiVersion = apiVersionOf(r);
    obj.kind = r.kind;
    const meta = obj.metadata;
    if (!meta.name && meta.generateName) meta.name = `${meta.generateName}${randomSuffix(5)}`;
    if (!r.namespaced) delete meta.namespace;
    if (this.get(r, meta.namespace, meta.name!)) throw alreadyExists(r, meta.name!);
    meta.uid = randomUUID();
    meta.creationTimestamp = rfc3339(this.now());
    if (r.generation) meta.generation = 1;
    delete meta.resourceVersion;
    delete meta.deletionTimestamp;
    return obj;
  }

  create(r: ResourceInfo, input: KubeObject): KubeObject {
    return this.commitCreate(r, this.prepareCreate(r, input));
  }

  /** Stores an object that prepareCreate returned (and defaulting/validation accepted). */
  commitCreate(r: ResourceInfo, obj: KubeObject): KubeObject {
    if (this.get(r, obj.metadata.namespace, obj.metadata.name!)) throw alreadyExists(r, obj.metadata.name!);
    this.rv++;
    obj.metadata.resourceVersion = String(this.rv);
    this.table(r).set(keyOf(obj.metadata.namespace, obj.metadata.name!), obj);
    this.emit('ADDED', r, obj);
    return obj;
  }

  /** Returns the object as an update would store it; throws 404/409 as the update would. */
  prepareUpdate(
    r: ResourceInfo,
    input: KubeObject,
    markDeleted = false,
  ): { next: KubeObject; current: KubeObject } {
    const name = input.metadata.name!;
    const current = this.mustGet(r, input.metadata.namespace, name);
    const rv = input.metadata.resourceVersion;
    if (rv && rv !== current.metadata.resourceVersion) throw conflict(r, name, STALE_OBJECT);
    const next = clone(input);
    next.apiVersion = apiVersionOf(r);
    next.kind = r.kind;
    const meta = next.metadata;
    meta.uid = current.metadata.uid;
    meta.creationTimestamp = current.metadata.creationTimestamp;
    if (!r.namespaced) delete meta.namespace;
    if (current.metadata.deletionTimestamp) meta.deletionTimestamp = current.metadata.deletionTimestamp;
    else if (!markDeleted) delete meta.deletionTimestamp;
    if (r.generation) {
      const changed = !deepEqual(withoutMetaAndStatus(current), withoutMetaAndStatus(next));
      meta.generation = (current.metadata.generation ?? 1) + (changed ? 1 : 0);
    }
    meta.resourceVersion = current.metadata.resourceVersion;
    return { next, current };
  }

  /** Stores an update. A no-op write keeps the old resourceVersion and emits nothing, as the real server does. */
  update(r: ResourceInfo, input: KubeObject, markDeleted = false): KubeObject {
    const { next, current } = this.prepareUpdate(r, input, markDeleted);
    if (deepEqual(next, current)) return current;
    if (
      next.metadata.deletionTimestamp &&
      (next.metadata.finalizers ?? []).length === 0 &&
      !awaitsGrace(next)
    ) {
      return this.remove(r, next, current);
    }
    this.rv++;
    next.metadata.resourceVersion = String(this.rv);
    this.table(r).set(keyOf(next.metadata.namespace, next.metadata.name!), next);
    this.emit('MODIFIED', r, next, current);
    return next;
  }

  private remove(r: ResourceInfo, last: KubeObject, current: KubeObject): KubeObject {
    this.rv++;
    const gone = clone(last);
    gone.metadata.resourceVersion = String(this.rv);
    this.table(r).delete(keyOf(current.metadata.namespace, current.metadata.name!));
    this.emit('DELETED', r, gone, current);
    return gone;
  }

  /**
   * Deletes now, or — when finalizers remain — marks deletionTimestamp and waits for them to go.
   * Returns the object and whether it is gone.
   */
  delete(
    r: ResourceInfo,
    namespace: string | undefined,
    name: string,
  ): { object: KubeObject; deleted: boolean } {
    const current = this.mustGet(r, namespace, name);
    if ((current.metadata.finalizers ?? []).length > 0) {
      if (current.metadata.deletionTimestamp) return { object: current, deleted: false };
      const next = clone(current);
      next.metadata.deletionTimestamp = rfc3339(this.now());
      next.metadata.deletionGracePeriodSeconds = 0;
      return { object: this.update(r, next, true), deleted: false };
    }
    return { object: this.remove(r, current, current), deleted: true };
  }
}

/**
 * Objects that stay after their finalizers are gone: a pod inside its grace period (the kubelet
 * deletes it), a namespace whose spec.finalizers the namespace controller has not cleared.
 */
function awaitsGrace(o: KubeObject): boolean {
  if ((o.metadata.deletionGracePeriodSeconds ?? 0) > 0) return true;
  const spec = o['spec'] as { finalizers?: unknown[] } | undefined;
  return o.kind === 'Namespace' && (spec?.finalizers ?? []).length > 0;
}

function withoutMetaAndStatus(obj: KubeObject): unknown {
  const { metadata: _m, status: _s, ...rest } = obj;
  return rest;
}

const SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

export function randomSuffix(n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) out += SUFFIX_ALPHABET[Math.floor(Math.random() * SUFFIX_ALPHABET.length)];
  return out;
}

/** Kubernetes' SafeEncodeString of a 32-bit FNV-1a hash: how pod-template-hash looks. */
export function templateHash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  let out = '';
  for (const digit of String(h)) out += SUFFIX_ALPHABET[digit.charCodeAt(0) % SUFFIX_ALPHABET.length];
  return out;
}
