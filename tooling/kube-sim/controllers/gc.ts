/**
 * The garbage collector: dependents whose owners are all gone are deleted (background), owners
 * being deleted in the foreground wait for their dependents, and a deleted namespace takes its
 * contents with it.
 */
import { clone } from '../patch.ts';
import { type ResourceInfo, resourceByKind } from '../resources.ts';
import type { WorkQueue } from '../runtime.ts';
import { rfc3339, type Store, type StoreEvent } from '../store.ts';
import type { KubeObject } from '../types.ts';

const NAMESPACES = resourceByKind('Namespace');
const PODS = resourceByKind('Pod');
export const FOREGROUND = 'foregroundDeletion';
interface Ref {
  resource: ResourceInfo;
  namespace: string | undefined;
  name: string;
}

export class GarbageCollector {
  private readonly store: Store;
  private readonly queue: WorkQueue;
  private readonly byUid = new Map<string, Ref>();
  private readonly dependents = new Map<string, Set<string>>();

  constructor(store: Store, queue: WorkQueue) {
    this.store = store;
    this.queue = queue;
  }

  private index(obj: KubeObject, resource: ResourceInfo, add: boolean): void {
    const uid = obj.metadata.uid!;
    for (const ref of obj.metadata.ownerReferences ?? []) {
      let set = this.dependents.get(ref.uid);
      if (add) {
        if (!set) {
          set = new Set();
          this.dependents.set(ref.uid, set);
        }
        set.add(uid);
      } else set?.delete(uid);
    }
    if (add) this.byUid.set(uid, { resource, namespace: obj.metadata.namespace, name: obj.metadata.name! });
    else this.byUid.delete(uid);
  }

  onEvent(e: StoreEvent): void {
    const obj = e.object;
    const uid = obj.metadata.uid!;
    if (e.previous) this.index(e.previous, e.resource, false);
    if (e.type !== 'DELETED') this.index(obj, e.resource, true);
    if (e.type === 'DELETED') {
      this.queue.enqueue(`gc/orphans/${uid}`, () => this.collectDependents(uid));
      for (const ref of obj.metadata.ownerReferences ?? []) {
        this.queue.enqueue(`gc/fg/${ref.uid}`, () => this.foreground(ref.uid));
      }
      const ns = obj.metadata.namespace;
      if (ns && this.store.get(NAMESPACES, undefined, ns)?.metadata.deletionTimestamp) {
        this.queue.enqueue(`gc/ns/${ns}`, () => this.deleteNamespaceContents(ns));
      }
    } else if (e.resource === NAMESPACES && obj.metadata.deletionTimestamp) {
      this.queue.enqueue(`gc/ns/${obj.metadata.name}`, () =>
        this.deleteNamespaceContents(obj.metadata.name!),
      );
    } else if (obj.metadata.deletionTimestamp && obj.metadata.finalizers?.includes(FOREGROUND)) {
      this.queue.enqueue(`gc/fg/${uid}`, () => this.foreground(uid));
    }
  }

  dependentsOf(uid: string): { ref: Ref; object: KubeObject }[] {
    const out: { ref: Ref; object: KubeObject }[] = [];
    for (const dep of this.dependents.get(uid) ?? []) {
      const ref = this.byUid.get(dep);
      const object = ref ? this.store.get(ref.resource, ref.namespace, ref.name) : undefined;
      if (ref && object) out.push({ ref, object });
    }
    return out;
  }

  /** Strips the owner reference from every dependent (propagationPolicy=Orphan). */
  orphan(uid: string): void {
    for (const { ref, object } of this.dependentsOf(uid)) {
      const next = clone(object);
      next.metadata.ownerReferences = (next.metadata.ownerReferences ?? []).filter((r) => r.uid !== uid);
      if (next.metadata.ownerReferences.length === 0) delete next.metadata.ownerReferences;
      delete next.metadata.resourceVersion;
      this.store.update(ref.resource, next);
    }
  }

  private collectDependents(uid: string): void {
    if (this.byUid.has(uid)) return;
    for (const { ref, object } of this.dependentsOf(uid)) {
      const live = (object.metadata.ownerReferences ?? []).filter(
        (r) => r.uid !== uid && this.byUid.has(r.uid),
      );
      if (live.length > 0) {
        const next = clone(object);
        next.metadata.ownerReferences = live;
        delete next.metadata.resourceVersion;
        this.store.update(ref.resource, next);
      } else if (!object.metadata.deletionTimestamp) {
        this.store.delete(ref.resource, ref.namespace, ref.name);
      }
    }
  }

  private foreground(uid: string): void {
    const ref = this.byUid.get(uid);
    const owner = ref ? this.store.get(ref.resource, ref.namespace, ref.name) : undefined;
    if (!ref || !owner?.metadata.deletionTimestamp || !owner.metadata.finalizers?.includes(FOREGROUND))
      return;
    const deps = this.dependentsOf(uid);
    if (deps.length === 0) {
      const next = clone(owner);
      next.metadata.finalizers = (next.metadata.finalizers ?? []).filter((f) => f !== FOREGROUND);
      delete next.metadata.resourceVersion;
      this.store.update(ref.resource, next);
      return;
    }
    for (const dep of deps) {
      if (dep.object.metadata.deletionTimestamp) continue;
      if (this.dependentsOf(dep.object.metadata.uid!).length > 0) {
        const next = clone(dep.object);
        next.metadata.finalizers = [...(next.metadata.finalizers ?? []), FOREGROUND];
        delete next.metadata.resourceVersion;
        this.store.update(dep.ref.resource, next);
      }
      this.store.delete(dep.ref.resource, dep.ref.namespace, dep.ref.name);
    }
  }

  /**
   * The namespace controller: deletes everything in a Terminating namespace (pods terminate with
   * their grace period) and, once nothing is left, clears spec.finalizers so the namespace goes.
   */
  private deleteNamespaceContents(namespace: string): void {
    const ns = this.store.get(NAMESPACES, undefined, namespace);
    if (!ns?.metadata.deletionTimestamp) return;
    const doomed = [...this.store.all()].filter(
      ({ resource, object }) => resource.namespaced && object.metadata.namespace === namespace,
    );
    const order = (r: ResourceInfo) => (['Deployment', 'ReplicaSet', 'Job'].includes(r.kind) ? 0 : 1);
    doomed.sort((a, b) => order(a.resource) - order(b.resource));
    for (const { resource, object } of doomed) {
      const live = this.store.get(resource, namespace, object.metadata.name!);
      if (!live) continue;
      if (live.metadata.finalizers?.length) {
        const next = clone(live);
        next.metadata.finalizers = [];
        delete next.metadata.resourceVersion;
        this.store.update(resource, next);
      }
      const still = this.store.get(resource, namespace, object.metadata.name!);
      if (!still) continue;
      if (resource.kind === 'Pod') this.deletePod(still);
      else this.store.delete(resource, namespace, object.metadata.name!);
    }
    const left = [...this.store.all()].some(
      ({ resource, object }) => resource.namespaced && object.metadata.namespace === namespace,
    );
    if (left) return;
    const next = clone(ns);
    (next['spec'] as { finalizers?: string[] }).finalizers = [];
    delete next.metadata.resourceVersion;
    this.store.update(NAMESPACES, next);
  }

  /** What the namespace controller's DELETE of a pod does: graceful when the pod is bound. */
  private deletePod(pod: KubeObject): void {
    const spec = (pod['spec'] ?? {}) as { nodeName?: string; terminationGracePeriodSeconds?: number };
    const grace = spec.terminationGracePeriodSeconds ?? 30;
    if (!spec.nodeName || grace <= 0) {
      this.store.delete(PODS, pod.metadata.namespace, pod.metadata.name!);
      return;
    }
    if (pod.metadata.deletionTimestamp) return;
    const next = clone(pod);
    next.metadata.deletionTimestamp = rfc3339(this.store.now() + grace * 1000);
    next.metadata.deletionGracePeriodSeconds = grace;
    delete next.metadata.resourceVersion;
    this.store.update(PODS, next, true);
  }
}
