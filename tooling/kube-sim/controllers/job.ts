/** The Job controller: runs pods to completions within parallelism, fails past backoffLimit. */
import { clone } from '../patch.ts';
import { resourceByKind } from '../resources.ts';
import type { EventRecorder, SimTime, WorkQueue } from '../runtime.ts';
import { rfc3339, type Store } from '../store.ts';
import type { JsonObject, KubeObject } from '../types.ts';
import { isPodReady, podPhase } from './kubelet.ts';
import { ownedBy, podFromTemplate } from './replicaset.ts';

const JOBS = resourceByKind('Job');
const PODS = resourceByKind('Pod');
const SOURCE = { component: 'job-controller' };

function finished(job: KubeObject): boolean {
  const conds = (((job['status'] ?? {}) as JsonObject)['conditions'] ?? []) as JsonObject[];
  return conds.some((c) => (c['type'] === 'Complete' || c['type'] === 'Failed') && c['status'] === 'True');
}

export class JobController {
  private readonly store: Store;
  private readonly time: SimTime;
  private readonly events: EventRecorder;
  private readonly queue: WorkQueue;

  constructor(store: Store, time: SimTime, events: EventRecorder, queue: WorkQueue) {
    this.store = store;
    this.time = time;
    this.events = events;
    this.queue = queue;
  }

  enqueue(namespace: string, name: string): void {
    this.queue.enqueue(`job/${namespace}/${name}`, () => this.reconcile(namespace, name));
  }

  reconcile(namespace: string, name: string): void {
    const job = this.store.get(JOBS, namespace, name);
    if (!job || job.metadata.deletionTimestamp || finished(job)) return;
    const spec = (job['spec'] ?? {}) as JsonObject;
    const completions = Number(spec['completions'] ?? 1);
    const parallelism = Number(spec['parallelism'] ?? 1);
    const backoffLimit = Number(spec['backoffLimit'] ?? 6);
    const pods = () => this.store.list(PODS, namespace).filter((p) => ownedBy(p, job));
    let all = pods();
    const count = (phase: string) => all.filter((p) => podPhase(p) === phase).length;
    const active = () =>
      all.filter((p) => !p.metadata.deletionTimestamp && ['Pending', 'Running'].includes(podPhase(p)));
    const succeeded = count('Succeeded');
    const failed = count('Failed');
    const now = rfc3339(this.time.now());
    const old = (job['status'] ?? {}) as JsonObject;
    const conditions = ((old['conditions'] ?? []) as JsonObject[]).slice();
    const condition = (type: string, reason: string, message: string) => ({
      type,
      status: 'True',
      lastProbeTime: now,
      lastTransitionTime: now,
      reason,
      message,
    });
    let completionTime: string | undefined;
    if (failed > backoffLimit) {
      for (const p of active()) this.store.delete(PODS, namespace, p.metadata.name!);
      conditions.push(
        condition('FailureTarget', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit'),
        condition('Failed', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit'),
      );
      this.events.record(
        job,
        'Warning',
        'BackoffLimitExceeded',
        'Job has reached the specified backoff limit',
        SOURCE,
      );
    } else if (succeeded >= completions) {
      conditions.push(
        condition('SuccessCriteriaMet', 'CompletionsReached', 'Reached expected number of completions'),
        condition('Complete', 'CompletionsReached', 'Reached expected number of completions'),
      );
      completionTime = now;
      this.events.record(job, 'Normal', 'Completed', 'Job completed', SOURCE);
    } else if (spec['suspend'] !== true) {
      const want = Math.min(parallelism, completions - succeeded);
      const template = (spec['template'] ?? {}) as JsonObject;
      for (let i = active().length; i < want; i++) {
        const pod = this.store.create(PODS, podFromTemplate(job, template, `${name}-`));
        this.events.record(job, 'Normal', 'SuccessfulCreate', `Created pod: ${pod.metadata.name}`, SOURCE);
      }
    }
    all = pods();
    const current = this.store.get(JOBS, namespace, name);
    if (!current) return;
    const next = clone(current);
    const act = active();
    next['status'] = {
      ...(old['startTime'] ? { startTime: old['startTime'] } : { startTime: now }),
      ...(completionTime ? { completionTime } : {}),
      ...(act.length ? { active: act.length } : {}),
      ...(count('Succeeded') ? { succeeded: count('Succeeded') } : {}),
      ...(count('Failed') ? { failed: count('Failed') } : {}),
      ready: act.filter(isPodReady).length,
      terminating: 0,
      uncountedTerminatedPods: {},
      ...(conditions.length ? { conditions } : {}),
    };
    this.store.update(JOBS, next);
  }
}
