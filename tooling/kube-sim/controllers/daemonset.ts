/**
 * The DaemonSet controller (daemon_controller.go, update.go) on kube-sim's one node: a pod per
 * node pinned by node affinity, RollingUpdate that deletes old pods at once when they are
 * unavailable and otherwise within maxUnavailable (maxSurge 0), OnDelete that replaces nothing,
 * and the status the real controller writes.
 */
import { clone } from '../patch.ts';
import { resourceByKind } from '../resources.ts';
import type { JsonObject, KubeObject } from '../types.ts';
import { resolveIntOrPercent } from './deployment.ts';
import { NODE_NAME } from './kubelet.ts';
import { isActivePod, omitZero, ownedBy, podFromTemplate } from './replicaset.ts';
import { hashOf, RevisionedController, syncRevision, templateOf, truncateHistory } from './revisions.ts';

const DS = resourceByKind('DaemonSet');
const PODS = resourceByKind('Pod');
const SOURCE = { component: 'daemonset-controller' };
const HASH_LABEL = 'controller-revision-hash';
const NODES = [NODE_NAME];

/** The tolerations the controller adds to every daemon pod (util.AddOrUpdateDaemonPodTolerations). */
const DAEMON_TOLERATIONS = [
  { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
  { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute' },
  { key: 'node.kubernetes.io/disk-pressure', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/memory-pressure', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/pid-pressure', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' },
];

export class DaemonSetController extends RevisionedController {
  protected readonly key = 'ds';
  protected readonly source = SOURCE;

  reconcile(namespace: string, name: string): void {
    const ds = this.store.get(DS, namespace, name);
    if (!ds || ds.metadata.deletionTimestamp) return;
    const spec = (ds['spec'] ?? {}) as JsonObject;
    const minReady = Number(spec['minReadySeconds'] ?? 0);
    const strategy = (spec['updateStrategy'] ?? {}) as JsonObject;
    const rolling = (strategy['type'] ?? 'RollingUpdate') === 'RollingUpdate';
    const revision = syncRevision(this.store, ds, HASH_LABEL);
    const hash = hashOf(revision, HASH_LABEL);
    const pods = () => this.store.list(PODS, namespace).filter((p) => ownedBy(p, ds) && isActivePod(p));
    const onNode = (node: string) => pods().filter((p) => nodeOfAffinity(p) === node);
    const available = (p: KubeObject) => this.isAvailable(p, minReady);

    for (const node of NODES) if (onNode(node).length === 0) this.createPod(ds, node, hash);
    if (rolling) {
      const maxUnavailable = resolveIntOrPercent(
        ((strategy['rollingUpdate'] ?? {}) as JsonObject)['maxUnavailable'] ?? 1,
        NODES.length,
        true,
      );
      let unavailable = NODES.filter((n) => !onNode(n).some(available)).length;
      for (const node of NODES) {
        for (const pod of onNode(node).filter((p) => p.metadata.labels?.[HASH_LABEL] !== hash)) {
          // An old pod that is unavailable anyway goes at once; an available one within the budget.
          if (available(pod)) {
            if (unavailable >= maxUnavailable) continue;
            unavailable++;
          }
          this.deletePod(ds, pod, `Deleted pod: ${pod.metadata.name}`);
        }
      }
    }
    this.writeStatus(namespace, name, hash, minReady);
    truncateHistory(
      this.store,
      ds,
      new Set([revision.metadata.name!, ...pods().map((p) => `${name}-${p.metadata.labels?.[HASH_LABEL]}`)]),
    );
  }

  private createPod(ds: KubeObject, node: string, hash: string): void {
    const pod = podFromTemplate(ds, clone(templateOf(ds)), `${ds.metadata.name}-`);
    pod.metadata.labels = {
      ...(pod.metadata.labels ?? {}),
      [HASH_LABEL]: hash,
      'pod-template-generation': String(ds.metadata.generation ?? 1),
    };
    const spec = pod['spec'] as JsonObject;
    spec['affinity'] = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] }],
        },
      },
    };
    spec['tolerations'] = [...((spec['tolerations'] as unknown[]) ?? []), ...DAEMON_TOLERATIONS];
    const made = this.store.create(PODS, pod);
    this.events.record(ds, 'Normal', 'SuccessfulCreate', `Created pod: ${made.metadata.name}`, SOURCE);
  }

  private writeStatus(namespace: string, name: string, hash: string, minReady: number): void {
    const ds = this.store.get(DS, namespace, name);
    if (!ds) return;
    const pods = this.store.list(PODS, namespace).filter((p) => ownedBy(p, ds) && isActivePod(p));
    const { ready, available: availableCount } = this.countPods(ds, pods, minReady);
    const updated = pods.filter((p) => p.metadata.labels?.[HASH_LABEL] === hash).length;
    const scheduled = Math.min(NODES.length, new Set(pods.map((p) => nodeOfAffinity(p))).size);
    const next = clone(ds);
    next['status'] = {
      currentNumberScheduled: scheduled,
      numberMisscheduled: 0,
      desiredNumberScheduled: NODES.length,
      numberReady: ready,
      observedGeneration: ds.metadata.generation ?? 1,
      ...omitZero({
        updatedNumberScheduled: updated,
        numberAvailable: availableCount,
        numberUnavailable: Math.max(0, NODES.length - availableCount),
      }),
    };
    this.store.update(DS, next);
  }
}

function nodeOfAffinity(pod: KubeObject): string | undefined {
  const spec = (pod['spec'] ?? {}) as JsonObject;
  const terms = (
    ((spec['affinity'] as JsonObject | undefined)?.['nodeAffinity'] as JsonObject | undefined)?.[
      'requiredDuringSchedulingIgnoredDuringExecution'
    ] as { nodeSelectorTerms?: { matchFields?: { values?: string[] }[] }[] } | undefined
  )?.nodeSelectorTerms;
  return terms?.[0]?.matchFields?.[0]?.values?.[0] ?? (spec['nodeName'] as string | undefined);
}
