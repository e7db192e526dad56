import { createHash } from 'node:crypto';
import { errorMessage, formatDuration, type Logger, PipelineError } from '../core/index.ts';
import { KubeApiError, type KubeClient } from './client.ts';
import { collectionPathOf, pathOf } from './objects.ts';
import type { KubeObject } from './resources.ts';
import { watchUntil } from './watch.ts';

export interface LeaseObject extends KubeObject {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: KubeObject['metadata'] & { name: string; namespace: string };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

class LockTimeoutError extends PipelineError {}

export interface HeldLease {
  name: string;
  /** Aborts if another holder took the lease over (we stopped renewing in time). */
  lost: AbortSignal;
  /** Who held it before us, when we took over an expired lease. */
  tookOverFrom?: string;
  waitedMs: number;
  release(): Promise<void>;
}

/** MicroTime as the API wants it: RFC 3339 with microseconds. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function expiresAt(lease: LeaseObject): number {
  const renewed = Date.parse(lease.spec.renewTime ?? lease.spec.acquireTime ?? '');
  return (Number.isNaN(renewed) ? 0 : renewed) + (lease.spec.leaseDurationSeconds ?? 0) * 1000;
}

/**
 * The acquisition rule, on what the Lease holds now: create it when there is none; take it when
 * it is ours, free, or expired (a holder that died stops renewing); otherwise undefined (wait).
 */
export function claimLease(o: {
  existing: LeaseObject | undefined;
  name: string;
  namespace: string;
  holder: string;
  durationSeconds: number;
  now: number;
  labels?: Record<string, string> | undefined;
}): { method: 'POST' | 'PUT'; body: LeaseObject; tookOverFrom?: string } | undefined {
  const { existing, holder, now } = o;
  if (!existing)
    return {
      method: 'POST',
      body: {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: o.name, namespace: o.namespace, ...(o.labels ? { labels: o.labels } : {}) },
        spec: {
          holderIdentity: holder,
          leaseDurationSeconds: o.durationSeconds,
          acquireTime: microTime(now),
          renewTime: microTime(now),
          leaseTransitions: 0,
        },
      },
    };
  const other = existing.spec.holderIdentity;
  if (other && other !== holder && expiresAt(existing) > now) return undefined;
  return {
    method: 'PUT',
    ...(other && other !== holder ? { tookOverFrom: other } : {}),
    body: {
      ...existing,
      spec: {
        ...existing.spec,
        holderIdentity: holder,
        leaseDurationSeconds: o.durationSeconds,
        acquireTime: microTime(now),
        renewTime: microTime(now),
        leaseTransitions: (existing.spec.leaseTransitions ?? 0) + (other === holder ? 0 : 1),
      },
    },
  };
}

/**
 * A mutual-exclusion lock held as a coordination.k8s.io Lease: two deploys of the same app to
 * the same environment never interleave. The second waits (watching the Lease, up to
 * `waitTimeoutMs`); a holder that died stops renewing, and its lease is taken over once expired.
 * Lease times are wall-clock times, shared by every runner that looks at them.
 */
async function acquireLease(options: {
  client: KubeClient;
  namespace: string;
  name: string;
  holder: string;
  leaseDurationMs: number;
  waitTimeoutMs: number;
  logger: Logger;
  labels?: Record<string, string>;
  signal?: AbortSignal;
}): Promise<HeldLease> {
  const { client, namespace, name, holder, logger } = options;
  const collection = collectionPathOf('Lease', namespace);
  const path = pathOf('Lease', namespace, name);
  const durationSeconds = Math.max(1, Math.round(options.leaseDurationMs / 1000));
  const started = Date.now();
  const deadline = started + options.waitTimeoutMs;
  let announced = false;
  let tookOverFrom: string | undefined;
  let conflicts = 0;

  for (;;) {
    if (options.signal?.aborted)
      throw new PipelineError(`Waiting for the deploy lock ${namespace}/${name} was cancelled`);
    const now = Date.now();
    const existing = await client.getJson<LeaseObject>(path);
    let held: LeaseObject | undefined;
    const claim = claimLease({
      existing,
      name,
      namespace,
      holder,
      durationSeconds,
      now,
      labels: options.labels,
    });
    try {
      if (claim?.tookOverFrom) {
        tookOverFrom = claim.tookOverFrom;
        logger.warning(
          `The deploy lock ${namespace}/${name} was held by ${tookOverFrom}, which stopped renewing it ${formatDuration(now - expiresAt(existing!))} ago; taking it over`,
        );
      }
      if (claim?.method === 'POST')
        held = await client.json<LeaseObject>('POST', collection, {
          body: claim.body,
          // A repeat after a 5xx answers 409 if the first got through; the loop then reads who holds it.
          idempotent: true,
        });
      else if (claim) held = await client.json<LeaseObject>('PUT', path, { body: claim.body });
    } catch (error) {
      // A refused Lease (a label or name the API will not take) is refused again on every try.
      if (error instanceof KubeApiError && error.status === 422)
        throw new PipelineError(
          `The API server refused the deploy lock ${namespace}/${name}: ${errorMessage(error)}`,
        );
      if (!(error instanceof KubeApiError && error.status === 409)) throw error;
      // Someone else created or took it between our read and write: look again, after a pause
      // that grows, so a server that keeps answering 409 is not asked thousands of times a second.
      conflicts++;
      if (Date.now() >= deadline)
        throw new LockTimeoutError(
          `The deploy lock ${namespace}/${name} kept changing under us (${conflicts} conflicts); gave up after waiting ${formatDuration(options.waitTimeoutMs)}`,
        );
      const pause = Math.min(2000, 50 * 2 ** Math.min(conflicts, 6)) * (0.5 + Math.random() / 2);
      await new Promise((r) => setTimeout(r, Math.max(0, Math.min(pause, deadline - Date.now()))));
      continue;
    }
    if (held) {
      logger.info(
        `Holding the deploy lock ${namespace}/${name}${Date.now() - started > 1000 ? ` after waiting ${formatDuration(Date.now() - started)}` : ''}`,
      );
      return hold(
        client,
        path,
        held,
        holder,
        options.leaseDurationMs,
        logger,
        Date.now() - started,
        tookOverFrom,
      );
    }

    const other = existing!.spec.holderIdentity;
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new LockTimeoutError(
        `Another deploy (${other}) holds the lock ${namespace}/${name}; gave up after waiting ${formatDuration(options.waitTimeoutMs)}. It expires at ${new Date(expiresAt(existing!)).toISOString()} unless renewed.`,
      );
    }
    if (!announced) {
      logger.info(
        `Waiting for the deploy lock ${namespace}/${name}, held by ${other} (up to ${formatDuration(options.waitTimeoutMs)})`,
      );
      announced = true;
    }
    // Sleep on the Lease itself: a release or change wakes us at once; expiry wakes us by time.
    try {
      await watchUntil<LeaseObject, true>({
        client,
        path: collection,
        fieldSelector: `metadata.name=${name}`,
        deadline: Math.max(Date.now() + 10, Math.min(deadline, expiresAt(existing!) + 50)),
        logger,
        ...(options.signal ? { signal: options.signal } : {}),
        condition: (leases) =>
          leases.get(name)?.metadata.resourceVersion !== existing!.metadata.resourceVersion
            ? true
            : undefined,
      });
    } catch (error) {
      logger.debug(`watching the deploy lock: ${errorMessage(error)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

function hold(
  client: KubeClient,
  path: string,
  initial: LeaseObject,
  holder: string,
  durationMs: number,
  logger: Logger,
  waitedMs: number,
  tookOverFrom?: string,
): HeldLease {
  let lease = initial;
  const lost = new AbortController();
  let renewing: Promise<void> = Promise.resolve();
  let lastRenewed = Date.now();
  const renew = async () => {
    // Renewals that keep failing must not let us deploy past our own lease: another run may take it.
    if (Date.now() - lastRenewed > durationMs) {
      logger.error(
        `Could not renew the deploy lock for longer than its lease (${formatDuration(durationMs)}); stopping`,
      );
      lost.abort(new PipelineError('The deploy lock expired while renewals failed'));
      return;
    }
    try {
      lease = await client.json<LeaseObject>('PUT', path, {
        body: { ...lease, spec: { ...lease.spec, renewTime: microTime(Date.now()) } },
      });
      lastRenewed = Date.now();
    } catch (error) {
      if (error instanceof KubeApiError && (error.status === 409 || error.status === 404)) {
        const now = await client.getJson<LeaseObject>(path).catch(() => undefined);
        if (now?.spec.holderIdentity === holder) {
          lease = now;
          return renew();
        }
        logger.error(`Lost the deploy lock ${path}: now held by ${now?.spec.holderIdentity ?? 'nobody'}`);
        lost.abort(new PipelineError('Lost the deploy lock to another run'));
        return;
      }
      logger.warning(`Renewing the deploy lock failed (will try again): ${errorMessage(error)}`);
    }
  };
  const timer = setInterval(
    () => {
      renewing = renew();
    },
    Math.max(200, durationMs / 3),
  );
  timer.unref();
  return {
    name: initial.metadata.name,
    lost: lost.signal,
    ...(tookOverFrom ? { tookOverFrom } : {}),
    waitedMs,
    async release() {
      clearInterval(timer);
      await renewing;
      if (lost.signal.aborted) return;
      try {
        await client.request('DELETE', path, {
          body: {
            kind: 'DeleteOptions',
            apiVersion: 'v1',
            preconditions: { resourceVersion: lease.metadata.resourceVersion },
          },
        });
      } catch (error) {
        logger.warning(
          `Releasing the deploy lock failed; it expires by itself in ${formatDuration(durationMs)}: ${errorMessage(error)}`,
        );
      }
    },
  };
}

/** How a rollout asks for its lock: who it is, how long it waits for another holder, its lease. */
export interface LockRequest {
  holder: string;
  waitTimeoutMs: number;
  leaseDurationMs: number;
}

/**
 * The one name of the Lease that guards changes to a Deployment. deploy-env, canary-shift and
 * blue-green-switch all take it, so no two of them ever change the same Deployment at once.
 */
function deploymentLockName(deployment: string): string {
  const name = `pipeline-rollout-${deployment}`;
  // A Lease name is a DNS subdomain (253 characters); a longer one keeps a hash of the whole.
  if (name.length <= 253) return name;
  return `${name.slice(0, 236).replace(/[-.]+$/, '')}-${createHash('sha256').update(name).digest('hex').slice(0, 16)}`;
}

/**
 * The Leases of every Deployment a rollout changes, taken one by one in name order (so two runs
 * that want overlapping sets never deadlock) and held as one: lost when any is lost, released
 * together. Undefined when no lock was asked for.
 */
export async function acquireRolloutLock(options: {
  client: KubeClient;
  namespace: string;
  deployments: string[];
  lock: LockRequest | undefined;
  logger: Logger;
  labels: Record<string, string>;
  signal?: AbortSignal | undefined;
}): Promise<HeldLease | undefined> {
  if (!options.lock) return undefined;
  const names = [...new Set(options.deployments.map(deploymentLockName))].sort();
  const started = Date.now();
  const held: HeldLease[] = [];
  try {
    for (const name of names) {
      held.push(
        await acquireLease({
          client: options.client,
          namespace: options.namespace,
          name,
          holder: options.lock.holder,
          leaseDurationMs: options.lock.leaseDurationMs,
          waitTimeoutMs: Math.max(0, options.lock.waitTimeoutMs - (Date.now() - started)),
          logger: options.logger,
          labels: options.labels,
          ...(options.signal ? { signal: options.signal } : {}),
        }),
      );
    }
  } catch (error) {
    for (const lease of held.reverse()) await lease.release();
    throw error;
  }
  if (held.length === 1) return held[0];
  const tookOverFrom = held.find((l) => l.tookOverFrom)?.tookOverFrom;
  return {
    name: names.join(','),
    lost: AbortSignal.any(held.map((l) => l.lost)),
    ...(tookOverFrom ? { tookOverFrom } : {}),
    waitedMs: Date.now() - started,
    async release() {
      for (const lease of held.reverse()) await lease.release();
    },
  };
}
