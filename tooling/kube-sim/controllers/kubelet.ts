/**
 * The scheduler and kubelet in one: binds pods to the single simulated node and plays each
 * container through pull, start, readiness, crash loops and image pull back-off per the image
 * behaviour table, writing status and Events as the real components do.
 */
import { type BehaviourTable, DEFAULT_BEHAVIOUR } from '../behaviour.ts';
import { clone, isObject } from '../patch.ts';
import { resourceByKind } from '../resources.ts';
import type { EventRecorder, SimTime, WorkQueue } from '../runtime.ts';
import { rfc3339, type Store, type StoreEvent } from '../store.ts';
import type { ImageBehaviour, JsonObject, KubeObject } from '../types.ts';

export const NODE_NAME = 'kube-sim-node';
const PODS = resourceByKind('Pod');
const KUBELET = { component: 'kubelet', host: NODE_NAME };
const SCHEDULER = { component: 'default-scheduler' };
const BACKOFF_BASE_MS = 10_000;
/** Simulated ms our containers take to exit on SIGTERM (the real-cluster KWOK stage uses the same). */
const STOP_MS = 1000;
const BACKOFF_MAX_MS = 300_000;

type ContainerPhase =
  | 'creating'
  | 'pull-failed'
  | 'pull-backoff'
  | 'running'
  | 'crash-backoff'
  | 'terminated';

interface ContainerSim {
  name: string;
  image: string;
  behaviour: ImageBehaviour;
  phase: ContainerPhase;
  ready: boolean;
  everStarted: boolean;
  restartCount: number;
  startedAt?: number;
  exitCode?: number;
  lastTerminated?: { exitCode: number; reason: string; startedAt: number; finishedAt: number };
  pullFailures: number;
}

interface PodSim {
  uid: string;
  namespace: string;
  name: string;
  restartPolicy: string;
  containers: ContainerSim[];
  cancels: (() => void)[];
  podIP: string;
  startTime: number;
  readySince?: number;
  unschedulable: boolean;
  terminating?: boolean;
  /** Killing was recorded when termination began. */
  killed?: boolean;
}

function behaviourValue<K extends keyof typeof DEFAULT_BEHAVIOUR>(
  b: ImageBehaviour,
  key: K,
): (typeof DEFAULT_BEHAVIOUR)[K] {
  return (b[key] ?? DEFAULT_BEHAVIOUR[key]) as (typeof DEFAULT_BEHAVIOUR)[K];
}

export class Kubelet {
  private readonly sims = new Map<string, PodSim>();
  private nextIp = 2;
  private readonly store: Store;
  private readonly time: SimTime;
  private readonly events: EventRecorder;
  private readonly table: BehaviourTable;
  private readonly queue: WorkQueue;

  constructor(store: Store, time: SimTime, events: EventRecorder, table: BehaviourTable, queue: WorkQueue) {
    this.store = store;
    this.time = time;
    this.events = events;
    this.table = table;
    this.queue = queue;
  }

  /** Real time at which the pod last became ready, for minReadySeconds. */
  readySince(uid: string | undefined): number | undefined {
    return uid ? this.sims.get(uid)?.readySince : undefined;
  }

  /** The image behaviour of a pod's first container (what the service proxy answers with). */
  behaviourOf(pod: KubeObject): ImageBehaviour {
    return this.sims.get(pod.metadata.uid!)?.containers[0]?.behaviour ?? this.table.lookup(firstImage(pod));
  }

  onEvent(e: StoreEvent): void {
    if (e.resource !== PODS) return;
    const uid = e.object.metadata.uid!;
    if (e.type === 'DELETED') {
      const sim = this.sims.get(uid);
      if (sim) for (const c of sim.cancels) c();
      this.sims.delete(uid);
      for (const c of sim?.killed ? [] : (sim?.containers ?? [])) {
        if (c.phase === 'running' || c.phase === 'crash-backoff') {
          this.events.record(
            e.object,
            'Normal',
            'Killing',
            `Stopping container ${c.name}`,
            KUBELET,
            `spec.containers{${c.name}}`,
          );
        }
      }
      return;
    }
    if (e.object.metadata.deletionTimestamp && !e.previous?.metadata.deletionTimestamp) {
      this.queue.enqueue(`kubelet/${uid}/terminate`, () => this.terminate(uid, e.object));
      return;
    }
    if (e.type === 'ADDED' && !this.sims.has(uid)) {
      this.queue.enqueue(`kubelet/${uid}`, () =>
        this.admit(uid, e.object.metadata.namespace!, e.object.metadata.name!),
      );
    }
  }

  private admit(uid: string, namespace: string, name: string): void {
    const pod = this.store.get(PODS, namespace, name);
    if (!pod || pod.metadata.uid !== uid || this.sims.has(uid)) return;
    const spec = (pod['spec'] ?? {}) as JsonObject;
    const containers = (Array.isArray(spec['containers']) ? spec['containers'] : []) as JsonObject[];
    const sim: PodSim = {
      uid,
      namespace,
      name,
      restartPolicy: String(spec['restartPolicy'] ?? 'Always'),
      containers: containers.map((c) => {
        const image = String(c['image'] ?? '');
        return {
          name: String(c['name'] ?? ''),
          image,
          behaviour: this.table.lookup(image),
          phase: 'creating' as ContainerPhase,
          ready: false,
          everStarted: false,
          restartCount: 0,
          pullFailures: 0,
        };
      }),
      cancels: [],
      podIP: `10.244.${Math.floor(this.nextIp / 250)}.${(this.nextIp++ % 250) + 2}`,
      startTime: this.time.now(),
      unschedulable: false,
    };
    this.sims.set(uid, sim);
    if (sim.containers.some((c) => c.behaviour.mode === 'unschedulable')) {
      sim.unschedulable = true;
      this.write(sim);
      this.events.record(
        pod,
        'Warning',
        'FailedScheduling',
        '0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.',
        SCHEDULER,
      );
      return;
    }
    this.write(sim, true);
    this.events.record(
      this.current(sim)!,
      'Normal',
      'Scheduled',
      `Successfully assigned ${namespace}/${name} to ${NODE_NAME}`,
      SCHEDULER,
    );
    for (const c of sim.containers) this.pull(sim, c);
  }

  /**
   * Graceful termination: the containers get their stop signal (Killing), the pod turns unready
   * so endpoints drop it, and once they have exited (within the grace period) the kubelet deletes
   * the pod for good, as a real kubelet does with a grace period of 0.
   */
  private terminate(uid: string, pod: KubeObject): void {
    const sim = this.sims.get(uid);
    const remove = () => {
      const live = this.store.get(PODS, pod.metadata.namespace, pod.metadata.name!);
      if (live && live.metadata.uid === uid)
        this.store.delete(PODS, pod.metadata.namespace, pod.metadata.name!);
    };
    if (!sim) return remove();
    for (const c of sim.cancels) c();
    sim.cancels = [];
    sim.terminating = true;
    for (const c of sim.containers) {
      if (c.phase === 'running' || c.phase === 'crash-backoff') {
        this.event(sim, c, 'Normal', 'Killing', `Stopping container ${c.name}`);
        sim.killed = true;
      }
      c.ready = false;
    }
    this.write(sim);
    const grace = (pod.metadata.deletionGracePeriodSeconds ?? 0) * 1000;
    sim.cancels.push(this.time.after(Math.min(grace, STOP_MS), remove));
  }

  private later(sim: PodSim, simMs: number, fn: () => void): void {
    sim.cancels.push(
      this.time.after(simMs, () => {
        if (this.sims.get(sim.uid) !== sim) return;
        fn();
      }),
    );
  }

  private current(sim: PodSim): KubeObject | undefined {
    const pod = this.store.get(PODS, sim.namespace, sim.name);
    return pod && pod.metadata.uid === sim.uid ? pod : undefined;
  }

  private event(
    sim: PodSim,
    c: ContainerSim | undefined,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): void {
    const pod = this.current(sim);
    if (pod)
      this.events.record(pod, type, reason, message, KUBELET, c ? `spec.containers{${c.name}}` : undefined);
  }

  private pull(sim: PodSim, c: ContainerSim): void {
    const b = c.behaviour;
    this.later(sim, c.pullFailures === 0 ? 1 : 0, () => {
      this.event(sim, c, 'Normal', 'Pulling', `Pulling image "${c.image}"`);
      this.later(sim, behaviourValue(b, 'pullMs'), () => {
        if (b.mode === 'pull-error') {
          c.phase = 'pull-failed';
          c.pullFailures++;
          this.event(
            sim,
            c,
            'Warning',
            'Failed',
            `Failed to pull image "${c.image}": rpc error: code = NotFound desc = failed to pull and unpack image "${c.image}": not found`,
          );
          this.event(sim, c, 'Warning', 'Failed', 'Error: ErrImagePull');
          this.write(sim);
          const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (c.pullFailures - 1));
          // The kubelet reports ErrImagePull until its next pod sync, then ImagePullBackOff.
          this.later(sim, Math.max(behaviourValue(b, 'pullMs'), 2000), () => {
            c.phase = 'pull-backoff';
            this.event(sim, c, 'Normal', 'BackOff', `Back-off pulling image "${c.image}"`);
            this.event(sim, c, 'Warning', 'Failed', 'Error: ImagePullBackOff');
            this.write(sim);
            this.later(sim, backoff, () => this.pull(sim, c));
          });
          return;
        }
        const ms = behaviourValue(b, 'pullMs');
        this.event(
          sim,
          c,
          'Normal',
          'Pulled',
          `Successfully pulled image "${c.image}" in ${ms}ms (${ms}ms including waiting). Image size: 12345678 bytes.`,
        );
        this.later(sim, behaviourValue(b, 'startupMs'), () => this.start(sim, c));
      });
    });
  }

  private start(sim: PodSim, c: ContainerSim): void {
    const b = c.behaviour;
    c.phase = 'running';
    c.everStarted = true;
    c.startedAt = this.time.now();
    this.event(sim, c, 'Normal', 'Created', `Created container ${c.name}`);
    this.event(sim, c, 'Normal', 'Started', `Started container ${c.name}`);
    this.write(sim);
    const runsToCompletion = sim.restartPolicy !== 'Always' && b.mode !== 'crash' && b.mode !== 'never-ready';
    if (runsToCompletion) {
      this.later(sim, b.jobDurationMs ?? 1000, () => this.exit(sim, c, b.jobOutcome === 'fail' ? 1 : 0));
      return;
    }
    if (b.mode === 'crash') {
      this.later(sim, behaviourValue(b, 'crashAfterMs'), () => this.exit(sim, c, 1));
      return;
    }
    if (b.mode === 'never-ready') return;
    this.later(sim, behaviourValue(b, 'readyMs'), () => {
      c.ready = true;
      this.write(sim);
    });
  }

  private exit(sim: PodSim, c: ContainerSim, exitCode: number): void {
    const finishedAt = this.time.now();
    c.ready = false;
    c.exitCode = exitCode;
    c.lastTerminated = {
      exitCode,
      reason: exitCode === 0 ? 'Completed' : 'Error',
      startedAt: c.startedAt ?? finishedAt,
      finishedAt,
    };
    const restart = sim.restartPolicy === 'Always' || (sim.restartPolicy === 'OnFailure' && exitCode !== 0);
    if (!restart) {
      c.phase = 'terminated';
      this.write(sim);
      return;
    }
    c.restartCount++;
    c.phase = 'crash-backoff';
    const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (c.restartCount - 1));
    this.event(
      sim,
      c,
      'Warning',
      'BackOff',
      `Back-off restarting failed container ${c.name} in pod ${sim.name}_${sim.namespace}(${sim.uid})`,
    );
    this.write(sim);
    this.later(sim, backoff, () => {
      this.event(sim, c, 'Normal', 'Pulled', `Container image "${c.image}" already present on machine`);
      this.start(sim, c);
    });
  }

  private containerStatus(sim: PodSim, c: ContainerSim): JsonObject {
    let state: JsonObject;
    switch (c.phase) {
      case 'creating':
        state = { waiting: { reason: 'ContainerCreating' } };
        break;
      case 'pull-failed':
        state = {
          waiting: {
            reason: 'ErrImagePull',
            message: `rpc error: code = NotFound desc = failed to pull and unpack image "${c.image}": not found`,
          },
        };
        break;
      case 'pull-backoff':
        state = { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${c.image}"` } };
        break;
      case 'running':
        state = { running: { startedAt: rfc3339(c.startedAt ?? this.time.now()) } };
        break;
      case 'crash-backoff': {
        const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (c.restartCount - 1));
        state = {
          waiting: {
            reason: 'CrashLoopBackOff',
            message: `back-off ${Math.round(backoff / 1000)}s restarting failed container=${c.name} pod=${sim.name}_${sim.namespace}(${sim.uid})`,
          },
        };
        break;
      }
      case 'terminated':
        state = {
          terminated: {
            exitCode: c.exitCode ?? 0,
            reason: c.exitCode === 0 ? 'Completed' : 'Error',
            startedAt: rfc3339(c.lastTerminated?.startedAt ?? this.time.now()),
            finishedAt: rfc3339(c.lastTerminated?.finishedAt ?? this.time.now()),
            containerID: `containerd://${sim.uid.replace(/-/g, '')}${c.name}`,
          },
        };
        break;
    }
    const last =
      c.lastTerminated && c.phase !== 'terminated'
        ? {
            terminated: {
              exitCode: c.lastTerminated.exitCode,
              reason: c.lastTerminated.reason,
              startedAt: rfc3339(c.lastTerminated.startedAt),
              finishedAt: rfc3339(c.lastTerminated.finishedAt),
              containerID: `containerd://${sim.uid.replace(/-/g, '')}${c.name}`,
            },
          }
        : {};
    return {
      name: c.name,
      image: c.image,
      imageID: c.everStarted
        ? `${c.image.split(':')[0]}@sha256:${sim.uid.replace(/-/g, '').padEnd(64, '0')}`
        : '',
      ...(c.everStarted ? { containerID: `containerd://${sim.uid.replace(/-/g, '')}${c.name}` } : {}),
      state,
      lastState: last,
      ready: c.ready,
      restartCount: c.restartCount,
      started: c.phase === 'running',
    };
  }

  private write(sim: PodSim, binding = false): void {
    const pod = this.current(sim);
    if (!pod) return;
    const next = clone(pod);
    const spec = (next['spec'] ?? {}) as JsonObject;
    const old = isObject(pod['status']) ? pod['status'] : {};
    const oldConds = (Array.isArray(old['conditions']) ? old['conditions'] : []) as JsonObject[];
    const now = this.time.now();
    const condition = (type: string, status: boolean, reason?: string, message?: string): JsonObject => {
      const prev = oldConds.find((c) => c['type'] === type);
      const s = status ? 'True' : 'False';
      return {
        type,
        status: s,
        lastProbeTime: null,
        lastTransitionTime: prev && prev['status'] === s ? prev['lastTransitionTime'] : rfc3339(now),
        ...(reason ? { reason } : {}),
        ...(message ? { message } : {}),
      };
    };
    if (sim.unschedulable) {
      next['status'] = {
        phase: 'Pending',
        conditions: [
          condition(
            'PodScheduled',
            false,
            'Unschedulable',
            '0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.',
          ),
        ],
        qosClass: 'BestEffort',
      };
      this.store.update(PODS, next);
      return;
    }
    if (binding || !spec['nodeName']) spec['nodeName'] = NODE_NAME;
    const cs = sim.containers;
    const allReady = cs.length > 0 && cs.every((c) => c.ready);
    const terminal = cs.length > 0 && cs.every((c) => c.phase === 'terminated');
    let phase = 'Pending';
    if (terminal) phase = cs.every((c) => c.exitCode === 0) ? 'Succeeded' : 'Failed';
    else if (cs.every((c) => c.everStarted || c.phase === 'terminated')) phase = 'Running';
    if (allReady && sim.readySince === undefined) sim.readySince = now;
    if (!allReady) sim.readySince = undefined;
    const notReady = cs.filter((c) => !c.ready).map((c) => c.name);
    const notReadyMsg = `containers with unready status: [${notReady.join(' ')}]`;
    next['status'] = {
      phase,
      conditions: [
        condition('PodReadyToStartContainers', true),
        condition('Initialized', true),
        condition(
          'Ready',
          allReady,
          allReady ? undefined : terminal ? 'PodCompleted' : 'ContainersNotReady',
          allReady || terminal ? undefined : notReadyMsg,
        ),
        condition(
          'ContainersReady',
          allReady,
          allReady ? undefined : terminal ? 'PodCompleted' : 'ContainersNotReady',
          allReady || terminal ? undefined : notReadyMsg,
        ),
        condition('PodScheduled', true),
      ],
      hostIP: '172.18.0.2',
      hostIPs: [{ ip: '172.18.0.2' }],
      podIP: sim.podIP,
      podIPs: [{ ip: sim.podIP }],
      startTime: rfc3339(sim.startTime),
      containerStatuses: cs.map((c) => this.containerStatus(sim, c)),
      qosClass: 'BestEffort',
    };
    this.store.update(PODS, next);
  }

  close(): void {
    for (const sim of this.sims.values()) for (const c of sim.cancels) c();
    this.sims.clear();
  }
}

function firstImage(pod: KubeObject): string {
  const spec = (pod['spec'] ?? {}) as JsonObject;
  const containers = (Array.isArray(spec['containers']) ? spec['containers'] : []) as JsonObject[];
  return String(containers[0]?.['image'] ?? '');
}

export function isPodReady(pod: KubeObject): boolean {
  const status = (pod['status'] ?? {}) as JsonObject;
  const conds = (Array.isArray(status['conditions']) ? status['conditions'] : []) as JsonObject[];
  return conds.some((c) => c['type'] === 'Ready' && c['status'] === 'True');
}

export function podPhase(pod: KubeObject): string {
  return String(((pod['status'] ?? {}) as JsonObject)['phase'] ?? 'Pending');
}
