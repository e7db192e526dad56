import { type Clock, type Logger, PipelineError, systemClock } from '../core/index.ts';
import { LABEL_MANAGED_BY } from '../kube/apply.ts';
import type { KubeClient } from '../kube/client.ts';
import { acquireRolloutLock, type HeldLease, type LockRequest } from '../kube/lease.ts';
import { mergePatch } from '../kube/objects.ts';
import type { DeploymentObject } from '../kube/rollout.ts';
import { type ServiceObject, type WaitSettings, waitReady } from './kube-ops.ts';
import { CREATED_BY } from './options.ts';

/**
 * The skeleton every rollout strategy runs on (rolling in deploy.ts, canary, blue-green): read
 * and validate everything first, then take the Lease of the Deployments it changes, re-read the
 * state kept in annotations under it, finish what a killed runner left, and run the mode asked
 * for. A strategy supplies the pieces; the order is written once, here.
 */

/** What every strategy takes besides its own options. */
export interface StrategyCommon {
  client: KubeClient;
  namespace: string;
  timeoutMs: number;
  stuckGraceMs: number;
  lock?: LockRequest | undefined;
  clock?: Clock | undefined;
  logger: Logger;
  signal?: AbortSignal | undefined;
}

export interface Strategy<Mode extends string, Context, Result> {
  /** Reads and validates everything; nothing in the cluster changes before it returns. */
  validate(): Promise<Context>;
  /** The Deployments whose Lease the strategy holds while it changes anything. */
  locks(context: Context): string[];
  /** Labels of the Lease besides managed-by (deploy-env's name the app and environment). */
  lockLabels?(context: Context): Record<string, string>;
  /**
   * Under the lock: re-reads the state (another run may have moved on while this one waited) and
   * finishes or undoes what a killed runner left half-done; a result ends the run there.
   */
  resume(context: Context, lease: HeldLease | undefined): Promise<Result | undefined>;
  modes: Record<Mode, (context: Context, lease: HeldLease | undefined) => Promise<Result>>;
}

export async function runStrategy<Mode extends string, Context, Result>(
  common: StrategyCommon,
  mode: Mode,
  strategy: Strategy<Mode, Context, Result>,
): Promise<Result> {
  const context = await strategy.validate();
  return underRolloutLock(
    common,
    strategy.locks(context),
    async (lease) => {
      const resumed = await strategy.resume(context, lease);
      return resumed ?? (await strategy.modes[mode](context, lease));
    },
    strategy.lockLabels?.(context),
  );
}

/** The Lease of `deployments` (the same one deploy-env, canary-shift and blue-green-switch take) around `work`. */
async function underRolloutLock<T>(
  common: Pick<StrategyCommon, 'client' | 'namespace' | 'lock' | 'logger' | 'signal'>,
  deployments: string[],
  work: (lease: HeldLease | undefined) => Promise<T>,
  labels: Record<string, string> = {},
): Promise<T> {
  const lease = await acquireRolloutLock({
    client: common.client,
    namespace: common.namespace,
    deployments,
    lock: common.lock,
    logger: common.logger,
    labels: { [LABEL_MANAGED_BY]: 'pipeline', ...labels },
    signal: common.signal,
  });
  try {
    return await work(lease);
  } finally {
    await lease?.release();
  }
}

/**
 * The waits of a strategy. `restore` runs without the step's cancel signal: a cancelled job must
 * still leave the routing and the capacity good.
 */
export function waitsOf(common: StrategyCommon): {
  clock: Clock;
  waits: WaitSettings;
  restore: WaitSettings;
} {
  const clock = common.clock ?? systemClock;
  const restore: WaitSettings = {
    timeoutMs: common.timeoutMs,
    stuckGraceMs: common.stuckGraceMs,
    clock,
    logger: common.logger,
  };
  return { clock, restore, waits: { ...restore, ...(common.signal ? { signal: common.signal } : {}) } };
}

export async function mustBeReady(
  client: KubeClient,
  namespace: string,
  name: string,
  waits: WaitSettings,
  what = (message: string) => message,
): Promise<void> {
  const outcome = await waitReady(client, namespace, name, waits);
  if (!outcome.ok) throw new PipelineError(what(outcome.message));
}

/** A strategy's state: string annotations on one object, read from it and written with one merge patch. */
export interface StateStore<Key extends string> {
  read(annotations: Record<string, string> | undefined): Partial<Record<Key, string>>;
  save(values: Partial<Record<Key, string | null>>): Promise<void>;
}

export function annotationState<Key extends string>(
  client: KubeClient,
  path: string,
  keys: Record<Key, string>,
): StateStore<Key> {
  return {
    read(annotations = {}) {
      const out: Partial<Record<Key, string>> = {};
      for (const key of Object.keys(keys) as Key[]) {
        const value = annotations[keys[key]];
        if (value) out[key] = value;
      }
      return out;
    },
    async save(values) {
      const annotations: Record<string, string | null> = {};
      for (const [key, value] of Object.entries(values) as [Key, string | null | undefined][])
        annotations[keys[key]] = value ?? null;
      await mergePatch(client, path, { metadata: { annotations } });
    },
  };
}

/** A Service of ours beside `reference`: its ports, another selector, marked as created by `by`. */
export async function createService(
  client: KubeClient,
  namespace: string,
  o: {
    name: string;
    selector: Record<string, string>;
    reference: ServiceObject;
    labels: Record<string, string>;
    by: string;
  },
): Promise<void> {
  await client.json('POST', `/api/v1/namespaces/${encodeURIComponent(namespace)}/services`, {
    body: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: o.name,
        namespace,
        labels: { [LABEL_MANAGED_BY]: 'pipeline', ...o.labels },
        annotations: { [CREATED_BY]: o.by },
      },
      spec: {
        selector: o.selector,
        ports: (o.reference.spec?.ports ?? []).map(({ name, port, targetPort, protocol }) => ({
          ...(name ? { name } : {}),
          port,
          ...(targetPort !== undefined ? { targetPort } : {}),
          ...(protocol ? { protocol } : {}),
        })),
      },
    },
  });
}

type Template = NonNullable<NonNullable<DeploymentObject['spec']>['template']>;

/**
 * A Deployment of ours (the canary, a colour) shaped like `source`: its rollout settings, another
 * selector and template. `extra` adds spec fields (a history limit, or a rendered spec whole).
 */
export async function createDeploymentLike(
  client: KubeClient,
  namespace: string,
  o: {
    name: string;
    source: DeploymentObject;
    labels: Record<string, string>;
    annotations?: Record<string, string>;
    selector: Record<string, string>;
    template: Template;
    replicas?: number | undefined;
    extra?: Record<string, unknown>;
  },
): Promise<void> {
  const spec = (o.source.spec ?? {}) as Record<string, unknown>;
  await client.json('POST', `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/deployments`, {
    body: {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name: o.name,
        namespace,
        labels: { ...(o.source.metadata.labels ?? {}), ...o.labels, [LABEL_MANAGED_BY]: 'pipeline' },
        ...(o.annotations ? { annotations: o.annotations } : {}),
      },
      spec: {
        ...(o.extra ?? {}),
        ...(o.replicas !== undefined ? { replicas: o.replicas } : {}),
        selector: { matchLabels: o.selector },
        template: o.template,
        ...(spec.minReadySeconds !== undefined ? { minReadySeconds: spec.minReadySeconds } : {}),
        ...(spec.progressDeadlineSeconds !== undefined
          ? { progressDeadlineSeconds: spec.progressDeadlineSeconds }
          : {}),
        ...(spec.strategy !== undefined ? { strategy: spec.strategy } : {}),
      },
    },
  });
}

/** A pod template with labels added (the track, the colour). */
export function labelled(template: Template, labels: Record<string, string>): Template {
  return {
    ...template,
    metadata: { ...template.metadata, labels: { ...(template.metadata?.labels ?? {}), ...labels } },
  };
}
