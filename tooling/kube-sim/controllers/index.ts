/** Wires the controllers to the store: every change enqueues the reconciles it concerns. */
import type { BehaviourTable } from '../behaviour.ts';
import { resourceByKind } from '../resources.ts';
import { EventRecorder, type SimTime, WorkQueue } from '../runtime.ts';
import type { Store, StoreEvent } from '../store.ts';
import { DaemonSetController } from './daemonset.ts';
import { DeploymentController } from './deployment.ts';
import { EndpointsController } from './endpoints.ts';
import { GarbageCollector } from './gc.ts';
import { JobController } from './job.ts';
import { Kubelet } from './kubelet.ts';
import { ReplicaSetController } from './replicaset.ts';
import { StatefulSetController } from './statefulset.ts';

const DEPLOYMENTS = resourceByKind('Deployment');
const RS = resourceByKind('ReplicaSet');
const PODS = resourceByKind('Pod');
const JOBS = resourceByKind('Job');
const SERVICES = resourceByKind('Service');
const STATEFULSETS = resourceByKind('StatefulSet');
const DAEMONSETS = resourceByKind('DaemonSet');

export class Controllers {
  readonly queue: WorkQueue;
  readonly events: EventRecorder;
  readonly kubelet: Kubelet;
  readonly replicaSets: ReplicaSetController;
  readonly deployments: DeploymentController;
  readonly jobs: JobController;
  readonly statefulSets: StatefulSetController;
  readonly daemonSets: DaemonSetController;
  readonly endpoints: EndpointsController;
  readonly gc: GarbageCollector;
  readonly errors: { key: string; error: unknown }[] = [];
  private readonly unsubscribe: () => void;
  private readonly store: Store;

  constructor(store: Store, time: SimTime, table: BehaviourTable, latencyMs = 0) {
    this.queue = new WorkQueue(latencyMs);
    this.queue.onError = (key, error) => {
      this.errors.push({ key, error });
      if (this.errors.length > 100) this.errors.shift();
    };
    this.events = new EventRecorder(store, time);
    this.kubelet = new Kubelet(store, time, this.events, table, this.queue);
    this.replicaSets = new ReplicaSetController(store, time, this.events, this.kubelet, this.queue);
    this.deployments = new DeploymentController(store, time, this.events, this.queue);
    this.jobs = new JobController(store, time, this.events, this.queue);
    this.statefulSets = new StatefulSetController(store, time, this.events, this.queue, this.replicaSets);
    this.daemonSets = new DaemonSetController(store, time, this.events, this.queue, this.replicaSets);
    this.endpoints = new EndpointsController(store, this.queue);
    this.gc = new GarbageCollector(store, this.queue);
    this.store = store;
    this.unsubscribe = store.subscribe((e) => this.route(e));
  }

  private route(e: StoreEvent): void {
    const obj = e.object;
    const ns = obj.metadata.namespace ?? '';
    const name = obj.metadata.name!;
    this.gc.onEvent(e);
    const owners = (o: typeof obj) => (o.metadata.ownerReferences ?? []).filter((r) => r.controller);
    switch (e.resource) {
      case DEPLOYMENTS:
        if (e.type === 'DELETED') this.deployments.forget(obj.metadata.uid!);
        else this.deployments.enqueue(ns, name);
        break;
      case RS:
        if (e.type !== 'DELETED') this.replicaSets.enqueue(ns, name);
        for (const o of owners(obj)) if (o.kind === 'Deployment') this.deployments.enqueue(ns, o.name);
        break;
      case JOBS:
        if (e.type !== 'DELETED') this.jobs.enqueue(ns, name);
        break;
      case STATEFULSETS:
        if (e.type !== 'DELETED') this.statefulSets.enqueue(ns, name);
        break;
      case DAEMONSETS:
        if (e.type !== 'DELETED') this.daemonSets.enqueue(ns, name);
        break;
      case PODS:
        this.kubelet.onEvent(e);
        for (const o of owners(obj)) {
          if (o.kind === 'ReplicaSet') {
            this.replicaSets.enqueue(ns, o.name);
            // Recreate waits for the old pods to be gone, not just counted out.
            if (e.type === 'DELETED') {
              const rs = this.store.get(RS, ns, o.name);
              for (const d of rs ? owners(rs) : [])
                if (d.kind === 'Deployment') this.deployments.enqueue(ns, d.name);
            }
          }
          if (o.kind === 'Job') this.jobs.enqueue(ns, o.name);
          if (o.kind === 'StatefulSet') this.statefulSets.enqueue(ns, o.name);
          if (o.kind === 'DaemonSet') this.daemonSets.enqueue(ns, o.name);
        }
        this.endpoints.enqueueNamespace(ns);
        break;
      case SERVICES:
        this.endpoints.enqueue(ns, name);
        break;
    }
  }

  close(): void {
    this.unsubscribe();
    this.queue.close();
    this.kubelet.close();
  }
}
