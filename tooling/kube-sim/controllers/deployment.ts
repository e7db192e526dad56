/**
 * The Deployment controller, after kubernetes/pkg/controller/deployment: one ReplicaSet per pod
 * template (named <deployment>-<pod-template-hash>), revisions in annotations, RollingUpdate with
 * maxSurge/maxUnavailable or Recreate, and the Progressing/Available conditions that
 * `kubectl rollout status` reads.
 */
import { clone, isObject } from '../patch.ts';
import { resourceByKind } from '../resources.ts';
import type { EventRecorder, SimTime, WorkQueue } from '../runtime.ts';
import { rfc3339, type Store, templateHash } from '../store.ts';
import type { JsonObject, KubeObject } from '../types.ts';
import { podPhase } from './kubelet.ts';
import { omitZero, ownedBy } from './replicaset.ts';

const DEPLOYMENTS = resourceByKind('Deployment');
const RS = resourceByKind('ReplicaSet');
const PODS = resourceByKind('Pod');
const SOURCE = { component: 'deployment-controller' };
const REVISION = 'deployment.kubernetes.io/revision';
const REVISION_HISTORY = 'deployment.kubernetes.io/revision-history';
const DESIRED = 'deployment.kubernetes.io/desired-replicas';
const MAX_REPLICAS = 'deployment.kubernetes.io/max-replicas';
const HASH_LABEL = 'pod-template-hash';

function stable(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stable).join(',')}]`;
  if (isObject(value)) {
    return `{${Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The template as compared across revisions: without the pod-template-hash label. */
export function templateKey(template: unknown): string {
  const t = clone((template ?? {}) as JsonObject);
  const meta = isObject(t['metadata']) ? t['metadata'] : undefined;
  if (meta && isObject(meta['labels'])) {
    delete meta['labels'][HASH_LABEL];
    if (Object.keys(meta['labels']).length === 0) delete meta['labels'];
  }
  if (meta && Object.keys(meta).length === 0) delete t['metadata'];
  return stable(t);
}

function revisionOf(obj: KubeObject): number {
  return Number(obj.metadata.annotations?.[REVISION] ?? 0) || 0;
}

/** An int-or-percent against a total: surge rounds up, unavailable rounds down (as the real one does). */
export function resolveIntOrPercent(value: unknown, total: number, roundUp: boolean): number {
  if (typeof value === 'number') return value;
  const m = /^(\d+)%$/.exec(String(value ?? '0'));
  if (!m) return Number(value) || 0;
  const raw = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(raw) : Math.floor(raw);
}

function specReplicas(obj: KubeObject): number {
  return Number(((obj['spec'] ?? {}) as JsonObject)['replicas'] ?? 0);
}

function statusNum(obj: KubeObject | undefined, field: string): number {
  return Number(((obj?.['status'] ?? {}) as JsonObject)[field] ?? 0);
}

function byCreation(a: KubeObject, b: KubeObject): number {
  return (
    (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') ||
    revisionOf(a) - revisionOf(b)
  );
}

const NOT_COPIED = new Set([
  REVISION,
  REVISION_HISTORY,
  DESIRED,
  MAX_REPLICAS,
  'kubectl.kubernetes.io/last-applied-configuration',
]);

function copiedAnnotations(d: KubeObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(d.metadata.annotations ?? {})) if (!NOT_COPIED.has(k)) out[k] = v;
  return out;
}

interface Condition {
  type: string;
  status: string;
  lastUpdateTime: string;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export class DeploymentController {
  private readonly store: Store;
  private readonly time: SimTime;
  private readonly events: EventRecorder;
  private readonly queue: WorkQueue;
  /** Real-time of the last progress per deployment uid (object timestamps only have seconds). */
  private readonly progressAt = new Map<string, number>();
  private readonly deadlineTimers = new Map<string, () => void>();

  constructor(store: Store, time: SimTime, events: EventRecorder, queue: WorkQueue) {
    this.store = store;
    this.time = time;
    this.events = events;
    this.queue = queue;
  }

  enqueue(namespace: string, name: string): void {
    this.queue.enqueue(`deploy/${namespace}/${name}`, () => this.reconcile(namespace, name));
  }

  forget(uid: string): void {
    this.progressAt.delete(uid);
    this.deadlineTimers.get(uid)?.();
    this.deadlineTimers.delete(uid);
  }

  private scale(
    d: KubeObject,
    rs: KubeObject,
    replicas: number,
    annotations: Record<string, string> = {},
  ): KubeObject {
    const from = specReplicas(rs);
    const next = clone(rs);
    (next['spec'] as JsonObject)['replicas'] = replicas;
    next.metadata.annotations = { ...(next.metadata.annotations ?? {}), ...annotations };
    const stored = this.store.update(RS, next);
    if (from !== replicas) {
      const verb = replicas > from ? 'up' : 'down';
      this.events.record(
        d,
        'Normal',
        'ScalingReplicaSet',
        `Scaled ${verb} replica set ${rs.metadata.name} from ${from} to ${replicas}`,
        SOURCE,
      );
    }
    return stored;
  }

  reconcile(namespace: string, name: string): void {
    const d = this.store.get(DEPLOYMENTS, namespace, name);
    if (!d || d.metadata.deletionTimestamp) return;
    const spec = (d['spec'] ?? {}) as JsonObject;
    const replicas = Number(spec['replicas'] ?? 1);
    const template = (spec['template'] ?? {}) as JsonObject;
    const strategy = (spec['strategy'] ?? {}) as JsonObject;
    const recreate = strategy['type'] === 'Recreate';
    const ru = (strategy['rollingUpdate'] ?? {}) as JsonObject;
    const maxSurge = recreate ? 0 : resolveIntOrPercent(ru['maxSurge'] ?? '25%', replicas, true);
    let maxUnavailable = recreate ? 0 : resolveIntOrPercent(ru['maxUnavailable'] ?? '25%', replicas, false);
    if (!recreate && maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;
    if (maxUnavailable > replicas) maxUnavailable = replicas;
    const paused = spec['paused'] === true;
    const key = templateKey(template);

    let all = this.store.list(RS, namespace).filter((rs) => ownedBy(rs, d));
    let newRS = all.find((rs) => templateKey((rs['spec'] as JsonObject)?.['template']) === key);
    // By uid, not identity: updating the new ReplicaSet below replaces `newRS` while `all` keeps
    // the earlier copy, which would otherwise pass for an old ReplicaSet and be scaled down.
    const isNew = (rs: KubeObject) => newRS !== undefined && rs.metadata.uid === newRS.metadata.uid;
    const olds = () => all.filter((rs) => !isNew(rs)).sort(byCreation);
    const maxOldRevision = Math.max(0, ...olds().map(revisionOf));
    let progressReason: { reason: string; message: string } | undefined;

    // The new ReplicaSet's revision must be the highest (rollback re-uses an old one).
    if (newRS && revisionOf(newRS) <= maxOldRevision) {
      const next = clone(newRS);
      const previous = newRS.metadata.annotations?.[REVISION];
      const history = [next.metadata.annotations?.[REVISION_HISTORY], previous].filter(Boolean).join(',');
      next.metadata.annotations = {
        ...(next.metadata.annotations ?? {}),
        [REVISION]: String(maxOldRevision + 1),
        ...(history ? { [REVISION_HISTORY]: history } : {}),
      };
      newRS = this.store.update(RS, next);
      progressReason = {
        reason: 'FoundNewReplicaSet',
        message: `Found new replica set "${newRS.metadata.name}"`,
      };
    }

    // Like the real controller, the new ReplicaSet carries the deployment's own annotations (change-cause...).
    if (newRS) {
      const wanted = copiedAnnotations(d);
      const have = newRS.metadata.annotations ?? {};
      if (Object.entries(wanted).some(([k, v]) => have[k] !== v)) {
        const next = clone(newRS);
        next.metadata.annotations = { ...have, ...wanted };
        newRS = this.store.update(RS, next);
      }
    }

    const oldActive = () => olds().filter((rs) => specReplicas(rs) > 0 || statusNum(rs, 'replicas') > 0);

    if (!paused) {
      if (recreate) {
        for (const rs of olds()) if (specReplicas(rs) > 0) this.scale(d, rs, 0);
        all = this.store.list(RS, namespace).filter((rs) => ownedBy(rs, d));
        const oldUids = new Set(all.filter((rs) => !isNew(rs)).map((rs) => rs.metadata.uid));
        const oldPodsLeft =
          all.some((rs) => !isNew(rs) && statusNum(rs, 'replicas') > 0) ||
          this.store
            .list(PODS, namespace)
            .some(
              (p) =>
                !['Succeeded', 'Failed'].includes(podPhase(p)) &&
                (p.metadata.ownerReferences ?? []).some((r) => r.controller && oldUids.has(r.uid)),
            );
        if (!oldPodsLeft) {
          if (!newRS) {
            newRS = this.createReplicaSet(d, template, key, maxOldRevision + 1, replicas, replicas, maxSurge);
            progressReason = {
              reason: 'NewReplicaSetCreated',
              message: `Created new replica set "${newRS.metadata.name}"`,
            };
          } else if (specReplicas(newRS) !== replicas) {
            newRS = this.scale(d, newRS, replicas, {
              [DESIRED]: String(replicas),
              [MAX_REPLICAS]: String(replicas),
            });
          }
        }
      } else {
        if (!newRS) {
          const current = all.reduce((n, rs) => n + specReplicas(rs), 0);
          const initial =
            oldActive().length === 0
              ? replicas
              : Math.max(0, Math.min(replicas, replicas + maxSurge - current));
          newRS = this.createReplicaSet(d, template, key, maxOldRevision + 1, initial, replicas, maxSurge);
          progressReason = {
            reason: 'NewReplicaSetCreated',
            message: `Created new replica set "${newRS.metadata.name}"`,
          };
          all = [...all, newRS];
        }
        this.rollingUpdate(d, newRS, olds(), replicas, maxSurge, maxUnavailable);
      }
    } else if (newRS && oldActive().length === 0 && specReplicas(newRS) !== replicas) {
      newRS = this.scale(d, newRS, replicas, { [DESIRED]: String(replicas) });
    }

    this.cleanupHistory(d, Number(spec['revisionHistoryLimit'] ?? 10), newRS);
    this.updateStatus(d, newRS, replicas, maxUnavailable, paused, progressReason);
  }

  private createReplicaSet(
    d: KubeObject,
    template: JsonObject,
    key: string,
    revision: number,
    initial: number,
    replicas: number,
    maxSurge: number,
  ): KubeObject {
    const namespace = d.metadata.namespace!;
    let collision = 0;
    let hash = templateHash(key);
    while (this.store.get(RS, namespace, `${d.metadata.name}-${hash}`))
      hash = templateHash(`${key}#${++collision}`);
    const t = clone(template);
    if (!isObject(t['metadata'])) t['metadata'] = {};
    const tmeta = t['metadata'] as JsonObject;
    tmeta['labels'] = { ...((tmeta['labels'] ?? {}) as Record<string, string>), [HASH_LABEL]: hash };
    const dspec = (d['spec'] ?? {}) as JsonObject;
    const selector = clone((dspec['selector'] ?? {}) as JsonObject);
    selector['matchLabels'] = {
      ...((selector['matchLabels'] ?? {}) as Record<string, string>),
      [HASH_LABEL]: hash,
    };
    const rs: KubeObject = {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: `${d.metadata.name}-${hash}`,
        namespace,
        labels: { ...((tmeta['labels'] ?? {}) as Record<string, string>) },
        annotations: {
          ...copiedAnnotations(d),
          [DESIRED]: String(replicas),
          [MAX_REPLICAS]: String(replicas + maxSurge),
          [REVISION]: String(revision),
        },
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            name: d.metadata.name!,
            uid: d.metadata.uid!,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: {
        replicas: initial,
        minReadySeconds: Number(dspec['minReadySeconds'] ?? 0),
        selector,
        template: t,
      },
    };
    const created = this.store.create(RS, rs);
    if (initial > 0) {
      this.events.record(
        d,
        'Normal',
        'ScalingReplicaSet',
        `Scaled up replica set ${created.metadata.name} from 0 to ${initial}`,
        SOURCE,
      );
    }
    return created;
  }

  private rollingUpdate(
    d: KubeObject,
    newRS: KubeObject,
    olds: KubeObject[],
    replicas: number,
    maxSurge: number,
    maxUnavailable: number,
  ): void {
    // Scale up the new ReplicaSet within maxSurge.
    const newReplicas = specReplicas(newRS);
    if (newReplicas > replicas) {
      newRS = this.scale(d, newRS, replicas, {
        [DESIRED]: String(replicas),
        [MAX_REPLICAS]: String(replicas + maxSurge),
      });
    } else if (newReplicas < replicas) {
      const allPods = olds.reduce((n, rs) => n + specReplicas(rs), 0) + newReplicas;
      const maxTotal = replicas + maxSurge;
      if (allPods < maxTotal) {
        const up = Math.min(maxTotal - allPods, replicas - newReplicas);
        if (up > 0)
          newRS = this.scale(d, newRS, newReplicas + up, {
            [DESIRED]: String(replicas),
            [MAX_REPLICAS]: String(maxTotal),
          });
      }
    }
    // Scale down old ReplicaSets without going under replicas - maxUnavailable available pods.
    const namespace = d.metadata.namespace!;
    let oldRSs = olds.map((rs) => this.store.get(RS, namespace, rs.metadata.name!)!).filter(Boolean);
    const allPods = oldRSs.reduce((n, rs) => n + specReplicas(rs), 0) + specReplicas(newRS);
    const minAvailable = replicas - maxUnavailable;
    const newUnavailable = specReplicas(newRS) - statusNum(newRS, 'availableReplicas');
    const maxScaledDown = allPods - minAvailable - newUnavailable;
    if (maxScaledDown <= 0) return;
    let cleaned = 0;
    for (const rs of oldRSs) {
      if (cleaned >= maxScaledDown) break;
      const unhealthy = specReplicas(rs) - statusNum(rs, 'availableReplicas');
      if (specReplicas(rs) === 0 || unhealthy <= 0) continue;
      const down = Math.min(maxScaledDown - cleaned, unhealthy);
      this.scale(d, rs, specReplicas(rs) - down);
      cleaned += down;
    }
    oldRSs = oldRSs.map((rs) => this.store.get(RS, namespace, rs.metadata.name!)!).filter(Boolean);
    const available =
      oldRSs.reduce((n, rs) => n + statusNum(rs, 'availableReplicas'), 0) +
      statusNum(newRS, 'availableReplicas');
    if (available <= minAvailable) return;
    const total = available - minAvailable;
    let done = 0;
    for (const rs of oldRSs) {
      if (done >= total) break;
      if (specReplicas(rs) === 0) continue;
      const down = Math.min(specReplicas(rs), total - done);
      this.scale(d, rs, specReplicas(rs) - down);
      done += down;
    }
  }

  private cleanupHistory(d: KubeObject, limit: number, newRS: KubeObject | undefined): void {
    const namespace = d.metadata.namespace!;
    const idle = this.store
      .list(RS, namespace)
      .filter((rs) => ownedBy(rs, d) && rs !== newRS && rs.metadata.uid !== newRS?.metadata.uid)
      .filter((rs) => specReplicas(rs) === 0 && statusNum(rs, 'replicas') === 0)
      .sort((a, b) => revisionOf(a) - revisionOf(b));
    for (const rs of idle.slice(0, Math.max(0, idle.length - limit)))
      this.store.delete(RS, namespace, rs.metadata.name!);
  }

  private updateStatus(
    d0: KubeObject,
    newRS: KubeObject | undefined,
    replicas: number,
    maxUnavailable: number,
    paused: boolean,
    progressReason: { reason: string; message: string } | undefined,
  ): void {
    const namespace = d0.metadata.namespace!;
    const d = this.store.get(DEPLOYMENTS, namespace, d0.metadata.name!);
    if (!d) return;
    const uid = d.metadata.uid!;
    const all = this.store.list(RS, namespace).filter((rs) => ownedBy(rs, d));
    const fresh = newRS ? all.find((rs) => rs.metadata.uid === newRS.metadata.uid) : undefined;
    const sum = (f: string) => all.reduce((n, rs) => n + statusNum(rs, f), 0);
    const availableReplicas = sum('availableReplicas');
    const oldStatus = (d['status'] ?? {}) as JsonObject;
    const counts = {
      observedGeneration: d.metadata.generation ?? 1,
      replicas: sum('replicas'),
      updatedReplicas: statusNum(fresh, 'replicas'),
      readyReplicas: sum('readyReplicas'),
      availableReplicas,
      // The real controller's formula: the ReplicaSets' desired replicas less the available ones.
      unavailableReplicas: Math.max(0, all.reduce((n, rs) => n + specReplicas(rs), 0) - availableReplicas),
    };
    const now = this.time.now();
    const nowText = rfc3339(now);
    const conditions = ((oldStatus['conditions'] ?? []) as Condition[]).map((c) => ({ ...c }));
    const setCondition = (
      c: Omit<Condition, 'lastUpdateTime' | 'lastTransitionTime'>,
      keepUpdateTime = false,
    ) => {
      const i = conditions.findIndex((x) => x.type === c.type);
      const prev = conditions[i];
      if (prev && prev.status === c.status && prev.reason === c.reason && prev.message === c.message) return;
      const next: Condition = {
        ...c,
        lastUpdateTime: keepUpdateTime && prev ? prev.lastUpdateTime : nowText,
        lastTransitionTime: prev && prev.status === c.status ? prev.lastTransitionTime : nowText,
      };
      if (i >= 0) conditions[i] = next;
      else conditions.push(next);
    };
    setCondition(
      availableReplicas >= replicas - maxUnavailable
        ? {
            type: 'Available',
            status: 'True',
            reason: 'MinimumReplicasAvailable',
            message: 'Deployment has minimum availability.',
          }
        : {
            type: 'Available',
            status: 'False',
            reason: 'MinimumReplicasUnavailable',
            message: 'Deployment does not have minimum availability.',
          },
    );
    const deadlineSeconds = (d['spec'] as JsonObject)['progressDeadlineSeconds'];
    const progressing = () => conditions.find((c) => c.type === 'Progressing');
    const rsName = fresh?.metadata.name ?? '';
    if (paused) {
      setCondition({
        type: 'Progressing',
        status: 'Unknown',
        reason: 'DeploymentPaused',
        message: 'Deployment is paused',
      });
    } else if (typeof deadlineSeconds === 'number') {
      if (progressing()?.reason === 'DeploymentPaused') {
        setCondition({
          type: 'Progressing',
          status: 'Unknown',
          reason: 'DeploymentResumed',
          message: 'Deployment is resumed',
        });
        this.progressAt.set(uid, now);
      }
      if (progressReason) {
        setCondition({ type: 'Progressing', status: 'True', ...progressReason });
        this.progressAt.set(uid, now);
      }
      const current = progressing();
      const complete =
        counts.replicas === counts.updatedReplicas && current?.reason === 'NewReplicaSetAvailable';
      if (!complete) {
        const old = {
          updated: Number(oldStatus['updatedReplicas'] ?? 0),
          ready: Number(oldStatus['readyReplicas'] ?? 0),
          available: Number(oldStatus['availableReplicas'] ?? 0),
          oldPods: Number(oldStatus['replicas'] ?? 0) - Number(oldStatus['updatedReplicas'] ?? 0),
        };
        const isComplete =
          counts.updatedReplicas === replicas &&
          counts.replicas === replicas &&
          counts.availableReplicas === replicas &&
          counts.observedGeneration >= (d.metadata.generation ?? 1);
        const madeProgress =
          counts.updatedReplicas > old.updated ||
          counts.readyReplicas > old.ready ||
          counts.availableReplicas > old.available ||
          counts.replicas - counts.updatedReplicas < old.oldPods;
        const parsed = Date.parse(current?.lastUpdateTime ?? '');
        const since = this.progressAt.get(uid) ?? (Number.isNaN(parsed) ? now : parsed);
        const timedOut =
          current?.reason === 'ProgressDeadlineExceeded' ||
          (current !== undefined && this.time.simSince(since) > deadlineSeconds * 1000);
        if (isComplete) {
          setCondition({
            type: 'Progressing',
            status: 'True',
            reason: 'NewReplicaSetAvailable',
            message: `ReplicaSet "${rsName}" has successfully progressed.`,
          });
          this.forget(uid);
        } else if (madeProgress) {
          const i = conditions.findIndex((c) => c.type === 'Progressing');
          const prev = conditions[i];
          const next: Condition = {
            type: 'Progressing',
            status: 'True',
            reason: 'ReplicaSetUpdated',
            message: `ReplicaSet "${rsName}" is progressing.`,
            lastUpdateTime: nowText,
            lastTransitionTime: prev?.status === 'True' ? prev.lastTransitionTime : nowText,
          };
          if (i >= 0) conditions[i] = next;
          else conditions.push(next);
          this.progressAt.set(uid, now);
        } else if (timedOut) {
          setCondition({
            type: 'Progressing',
            status: 'False',
            reason: 'ProgressDeadlineExceeded',
            message: `ReplicaSet "${rsName}" has timed out progressing.`,
          });
          this.forget(uid);
        }
        if (
          progressing()?.reason !== 'ProgressDeadlineExceeded' &&
          progressing()?.reason !== 'NewReplicaSetAvailable'
        ) {
          this.armDeadline(d, deadlineSeconds);
        }
      }
    }
    conditions.sort((a, b) => (a.type === 'Available' ? -1 : b.type === 'Available' ? 1 : 0));
    const next = clone(d);
    next['status'] = {
      ...omitZero(counts),
      terminatingReplicas: sum('terminatingReplicas'),
      conditions,
      ...(oldStatus['collisionCount'] !== undefined ? { collisionCount: oldStatus['collisionCount'] } : {}),
    };
    if (fresh) {
      next.metadata.annotations = {
        ...(next.metadata.annotations ?? {}),
        [REVISION]: String(revisionOf(fresh)),
      };
    }
    this.store.update(DEPLOYMENTS, next);
  }

  private armDeadline(d: KubeObject, deadlineSeconds: number): void {
    const uid = d.metadata.uid!;
    if (!this.progressAt.has(uid)) this.progressAt.set(uid, this.time.now());
    this.deadlineTimers.get(uid)?.();
    const left = deadlineSeconds * 1000 - this.time.simSince(this.progressAt.get(uid)!);
    const namespace = d.metadata.namespace!;
    const name = d.metadata.name!;
    this.deadlineTimers.set(
      uid,
      this.time.after(Math.max(0, left) + 1, () => this.enqueue(namespace, name)),
    );
  }
}
