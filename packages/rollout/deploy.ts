import {
  type Clock,
  errorMessage,
  InputError,
  type Logger,
  PipelineError,
  retry,
  systemClock,
} from '../core/index.ts';
import {
  type AppliedObject,
  applyObjects,
  LABEL_APP,
  LABEL_ENVIRONMENT,
  LABEL_MANAGED_BY,
  labelForPrune,
  pruneObjects,
  type ResolvedObject,
  resolveObjects,
} from '../kube/apply.ts';
import { stampKeyedSecretChecksums } from '../kube/checksum-key.ts';
import { KubeApiError, type KubeClient } from '../kube/client.ts';
import {
  chooseRollbackRevision,
  currentRevision,
  REVISION_ANNOTATION,
  type RollbackResult,
  rollbackWorkload,
  workloadHistory,
} from '../kube/history.ts';
import type { HeldLease, LockRequest } from '../kube/lease.ts';
import { checkObjectLimits, PROTECTED_NAMESPACES } from '../kube/limits.ts';
import {
  podTemplates,
  type SourcedObject,
  stampConfigChecksums,
  substituteImages,
  workloadImages,
} from '../kube/manifests.ts';
import { mergePatch, pathOf } from '../kube/objects.ts';
import { ResourceCatalog } from '../kube/resources.ts';
import { type PodProblem, podDiagnostics, type RolloutEvent, waitForWorkload } from '../kube/rollout.ts';
import { isWaitedKind, KIND_WORDS, type WorkloadKind, type WorkloadObject } from '../kube/status-viewers.ts';
import { transientKubeFault } from '../kube/watch.ts';
import { isConfigGeneration, pruneOlderGenerations } from './generations.ts';
import { runStrategy } from './strategy.ts';

export interface DeployOptions {
  client: KubeClient;
  app: string;
  environment: string;
  namespace: string;
  createNamespace: boolean;
  objects: SourcedObject[];
  images: Map<string, string>;
  /** Replica counts that override the manifests: one for every Deployment (`*`), or by name. */
  replicas?: Map<string, number>;
  /** Environment configuration and secrets from inputs, applied as `<app>-config` / `<app>-secrets`. */
  config?: Map<string, string>;
  secrets?: Map<string, string>;
  prune: boolean;
  dryRun: boolean;
  forceConflicts: boolean;
  timeoutMs: number;
  stuckGraceMs: number;
  rollbackOnFailure: boolean;
  /** Cluster-scoped kinds the manifests may hold (input cluster-scoped-kinds); any other fails the deploy. */
  clusterScopedKinds?: string[];
  lock?: LockRequest;
  logger: Logger;
  clock?: Clock;
  signal?: AbortSignal;
  /** Called once the cluster accepted the plan and before the first change (GitHub Deployment goes here). */
  beforeApply?: () => Promise<void>;
  /** The objects as prepareObjects already returned them (the caller checked them first): not prepared again. */
  prepared?: PreparedObjects;
}

export interface WorkloadResult {
  kind: WorkloadKind;
  name: string;
  ok: boolean;
  message: string;
  revision?: string;
  previousRevision?: string;
  images: string[];
  previousImages: string[];
  timeline: RolloutEvent[];
  problems: PodProblem[];
  diagnostics: { pod: string; events: string[]; logs: string }[];
  /** The revision a failed release goes back to: the last one a deploy saw healthy, else the one before. */
  rollbackTarget?: string;
  /** spec.replicas this run applied; undefined when the overlay leaves them to an autoscaler. */
  appliedReplicas?: number;
  /**
   * spec.replicas of the release a rollback goes back to (recorded with the last good revision,
   * else the live value before the apply): undoing the template alone would keep the new count.
   */
  rollbackReplicas?: number;
  /** `failed`: the workload should have gone back and did not (API faults, lost lock, history gone). */
  rollback?: RollbackResult & { ok: boolean; waitMessage: string; failed?: boolean };
}

export interface DeployResult {
  ok: boolean;
  dryRun: boolean;
  namespace: string;
  applied: AppliedObject[];
  imageChanges: { container: string; object: string; from: string; to: string }[];
  workloads: WorkloadResult[];
  rolledBack: boolean;
  /** Deployments that needed a rollback and still run the failed release, with why. */
  notRolledBack: { name: string; message: string }[];
  failure?: string;
  lock?: { waitedMs: number; tookOverFrom?: string };
  durationMs: number;
}

function notRolledBack(workloads: WorkloadResult[]): DeployResult['notRolledBack'] {
  return workloads
    .filter((w) => w.rollback?.failed)
    .map((w) => ({ name: w.name, message: w.rollback!.message }));
}

export interface PreparedObjects {
  objects: SourcedObject[];
  imageChanges: DeployResult['imageChanges'];
}

/** Checks what can be checked without a cluster: images exist in the manifests, config objects. */
export function prepareObjects(
  options: Pick<
    DeployOptions,
    'objects' | 'images' | 'replicas' | 'config' | 'secrets' | 'app' | 'environment'
  >,
): PreparedObjects {
  const objects = options.objects.map((o) => ({ ...o, object: structuredClone(o.object) }));
  const imageChanges = options.images.size > 0 ? substituteImages(objects, options.images) : [];
  if (options.replicas && options.replicas.size > 0) overrideReplicas(objects, options.replicas);
  if (options.config && options.config.size > 0) {
    objects.push({
      source: "input 'config'",
      object: {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `${options.app}-config` },
        data: Object.fromEntries(options.config),
      },
    });
  }
  if (options.secrets && options.secrets.size > 0) {
    objects.push({
      source: "input 'secrets'",
      object: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: `${options.app}-secrets` },
        type: 'Opaque',
        stringData: Object.fromEntries(options.secrets),
      },
    });
  }
  stampConfigChecksums(objects);
  labelForPrune(objects, options.app, options.environment);
  checkObjectLimits(objects);
  return { objects, imageChanges };
}

/** Sets spec.replicas of the named Deployments (or all, for `*`); a name that matches none is an input error. */
function overrideReplicas(objects: SourcedObject[], replicas: Map<string, number>): void {
  const deployments = objects.filter((o) => o.object.kind === 'Deployment');
  for (const [name, count] of replicas) {
    const targets = name === '*' ? deployments : deployments.filter((d) => d.object.metadata.name === name);
    if (targets.length === 0) {
      throw new InputError(
        'replicas',
        `names ${JSON.stringify(name)}, which is not a Deployment in the manifests`,
        `* or Deployment names present in the manifests: ${deployments.map((d) => d.object.metadata.name).join(', ') || '(none)'}`,
      );
    }
    for (const d of targets) (d.object.spec as { replicas?: number }).replicas = count;
  }
}

async function ensureNamespace(
  client: KubeClient,
  namespace: string,
  create: boolean,
  dryRun: boolean,
  log: Logger,
): Promise<void> {
  try {
    const ns = await client.getJson(`/api/v1/namespaces/${encodeURIComponent(namespace)}`);
    if (ns) return;
  } catch (error) {
    // A deployer scoped to its namespace may not read Namespace objects; its first apply will tell.
    if (error instanceof KubeApiError && error.status === 403) return;
    throw error;
  }
  if (!create)
    throw new PipelineError(
      `Namespace ${namespace} does not exist; create it, or set create-namespace: true`,
    );
  if (dryRun) {
    log.info(`Namespace ${namespace} would be created`);
    return;
  }
  try {
    // Safe to repeat: a create that reached the server before a 5xx answers 409 the second time.
    await client.request('POST', '/api/v1/namespaces', {
      body: {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: namespace, labels: { [LABEL_MANAGED_BY]: 'pipeline' } },
      },
      idempotent: true,
    });
    log.info(`Created namespace ${namespace}`);
  } catch (error) {
    if (!(error instanceof KubeApiError && error.status === 409)) throw error;
  }
}

/**
 * A deploy changes its own namespace and nothing else: objects of other namespaces were refused
 * while resolving; cluster-scoped objects are refused unless their kind is listed, and the
 * cluster's own namespaces never.
 */
export function checkNamespaceScope(
  resolved: ResolvedObject[],
  namespace: string,
  clusterScopedKinds: string[],
  /** canary-shift and blue-green-switch run in a namespace they did not choose and allow no cluster-scoped kind. */
  step: 'deploy-env' | 'rollout' = 'deploy-env',
): void {
  if (step === 'deploy-env' && PROTECTED_NAMESPACES.includes(namespace))
    throw new InputError(
      'namespace',
      `is ${JSON.stringify(namespace)}, which deploys never touch`,
      `a namespace of the application's own (not ${PROTECTED_NAMESPACES.join(', ')})`,
    );
  for (const { object, type, source } of resolved) {
    if (type.namespaced) continue;
    if (object.kind === 'Namespace' && PROTECTED_NAMESPACES.includes(object.metadata.name!))
      throw new PipelineError(
        `${source}: Namespace/${object.metadata.name} is one of the cluster's own namespaces (${PROTECTED_NAMESPACES.join(', ')}), which deploys never touch; remove it from the manifests`,
      );
    if (!clusterScopedKinds.includes(object.kind))
      throw new PipelineError(
        step === 'deploy-env'
          ? `${source}: ${object.kind}/${object.metadata.name} is cluster-scoped, and this deploy changes only namespace ${namespace}; remove it from the manifests, or list ${object.kind} in the input cluster-scoped-kinds to apply it on purpose`
          : `${source}: ${object.kind}/${object.metadata.name} is cluster-scoped, and this rollout changes only namespace ${namespace}; remove it from the manifests (deploy-env applies it when its input cluster-scoped-kinds lists ${object.kind})`,
      );
  }
}

/** A clear message for the first request that shows we cannot reach or are not allowed in. */
function explainAccessError(error: unknown, namespace: string, server: string): PipelineError | undefined {
  if (error instanceof KubeApiError) {
    if (error.status === 401)
      return new PipelineError(
        `The cluster at ${server} rejected the credentials in the kubeconfig (401 Unauthorized)`,
      );
    if (error.status === 403)
      return new PipelineError(
        `The kubeconfig's user is not allowed to do this in namespace ${namespace} (403 Forbidden): ${error.message}`,
      );
    return undefined;
  }
  // The code may sit on a cause: a refused connection arrives wrapped by the retries that gave up.
  let code: string | undefined;
  for (let e: unknown = error, depth = 0; e && !code && depth < 5; depth++) {
    code = (e as { code?: string }).code;
    e = (e as { cause?: unknown }).cause;
  }
  if (
    code &&
    [
      'ECONNREFUSED',
      'ENOTFOUND',
      'ETIMEDOUT',
      'EAI_AGAIN',
      'ECONNRESET',
      'CERT_HAS_EXPIRED',
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'SELF_SIGNED_CERT_IN_CHAIN',
    ].includes(code)
  ) {
    return new PipelineError(`The cluster at ${server} cannot be reached: ${errorMessage(error)}`);
  }
  return undefined;
}

/**
 * The revision a Deployment last finished rolling out under a deploy of ours. A failed release
 * whose rollback did not happen stays the current revision, so "the revision before this run"
 * would name it; this annotation still names the release before it.
 */
const LAST_GOOD_REVISION_ANNOTATION = 'pipeline.dev/last-good-revision';
/** spec.replicas of that revision's release, restored with its template by a rollback. */
const LAST_GOOD_REPLICAS_ANNOTATION = 'pipeline.dev/last-good-replicas';

const replicasOf = (object: WorkloadObject | undefined): number | undefined => {
  const n = (object?.spec as { replicas?: unknown } | undefined)?.replicas;
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : undefined;
};

async function recordLastGood(
  client: KubeClient,
  namespace: string,
  w: WorkloadResult,
  log: Logger,
): Promise<void> {
  if (!w.revision) return;
  try {
    await mergePatch(
      client,
      pathOf(w.kind, namespace, w.name),
      {
        metadata: {
          annotations: {
            [LAST_GOOD_REVISION_ANNOTATION]: w.revision,
            [LAST_GOOD_REPLICAS_ANNOTATION]:
              w.appliedReplicas === undefined ? null : String(w.appliedReplicas),
          },
        },
      },
      'pipeline-last-good',
    );
  } catch (error) {
    log.warning(
      `Could not record revision ${w.revision} of ${KIND_WORDS[w.kind]} "${w.name}" as the last good one (a later rollback goes to the revision before the current one): ${errorMessage(error)}`,
    );
  }
}

/** "deployment(s)" when all are Deployments (as the log always said), else "workload(s)". */
function workloadWords(workloads: WorkloadResult[]): string {
  return workloads.every((w) => w.kind === 'Deployment') ? 'deployment(s)' : 'workload(s)';
}

/** The live workload before the apply and the revision it runs (Deployment annotation, or its history). */
async function revisionBefore(
  client: KubeClient,
  namespace: string,
  kind: WorkloadKind,
  name: string,
): Promise<{ object: WorkloadObject; revision?: string } | undefined> {
  const object = await client.getJson<WorkloadObject>(pathOf(kind, namespace, name));
  if (!object) return undefined;
  const revision =
    kind === 'Deployment'
      ? object.metadata.annotations?.[REVISION_ANNOTATION]
      : currentRevision(kind, object, await workloadHistory(client, namespace, kind, object))?.revision;
  return { object, ...(revision ? { revision: String(revision) } : {}) };
}

export async function deploy(options: DeployOptions): Promise<DeployResult> {
  try {
    return await deployOnce(options);
  } catch (error) {
    throw explainAccessError(error, options.namespace, options.client.server) ?? error;
  }
}

/** What the steps of one deploy share once the objects are resolved and the lock is held. */
interface DeployRun {
  options: DeployOptions;
  clock: Clock;
  lease: HeldLease | undefined;
  catalog: ResourceCatalog;
  resolved: ResolvedObject[];
  workloads: WorkloadResult[];
}

async function deployOnce(options: DeployOptions): Promise<DeployResult> {
  const clock = options.clock ?? systemClock;
  const started = clock.now();
  return runStrategy({ ...options, lock: options.dryRun ? undefined : options.lock }, 'apply', {
    validate: () => validateDeploy(options),
    // The same Lease per Deployment as canary-shift and blue-green-switch take; a deploy without a
    // Deployment locks its app name, so two such deploys still never interleave.
    locks: ({ resolved }) => {
      const names = resolved
        .filter((o) => o.object.kind === 'Deployment')
        .map((o) => o.object.metadata.name!);
      return names.length > 0 ? names : [options.app];
    },
    lockLabels: () => ({ [LABEL_APP]: options.app, [LABEL_ENVIRONMENT]: options.environment }),
    // Nothing half-done to finish: the apply is idempotent, and what a rollback needs (the last
    // good revision and its replicas) is kept in annotations on the workloads.
    resume: async () => undefined,
    modes: { apply: (validated, lease) => applyRelease(options, validated, lease, clock, started) },
  });
}

interface ValidatedDeploy extends PreparedObjects {
  catalog: ResourceCatalog;
  resolved: ResolvedObject[];
}

/**
 * Everything checked before the lock: images and limits, what the server knows of each kind,
 * the namespace scope. A missing namespace is created here, as it always was before the lock.
 */
async function validateDeploy(options: DeployOptions): Promise<ValidatedDeploy> {
  const { client, logger: log, namespace } = options;
  const { objects, imageChanges } = options.prepared ?? prepareObjects(options);
  const catalog = new ResourceCatalog(client);
  await client.json('GET', '/version');
  const resolved: ResolvedObject[] = await resolveObjects(objects, catalog, namespace);
  checkNamespaceScope(resolved, namespace, options.clusterScopedKinds ?? []);
  await ensureNamespace(client, namespace, options.createNamespace, options.dryRun, log);
  // Needs the namespace (its key lives there); resolved holds the same objects, so they carry it.
  await stampKeyedSecretChecksums(objects, client, namespace, { dryRun: options.dryRun, logger: log });
  return { objects, imageChanges, catalog, resolved };
}

/** Under the lock: validate on the server, apply, wait, and record, prune or roll back. */
async function applyRelease(
  options: DeployOptions,
  { catalog, resolved, imageChanges }: ValidatedDeploy,
  lease: HeldLease | undefined,
  clock: Clock,
  started: number,
): Promise<DeployResult> {
  const { client, logger: log, namespace } = options;
  const { workloads, lastGoodBefore } = await workloadsBefore(options, resolved);
  const run: DeployRun = { options, clock, lease, catalog, resolved, workloads };
  const applied = await validateAndApply(run);
  const base = (): Omit<
    DeployResult,
    'ok' | 'workloads' | 'rolledBack' | 'notRolledBack' | 'durationMs'
  > => ({
    dryRun: options.dryRun,
    namespace,
    applied,
    imageChanges,
    ...(lease
      ? {
          lock: {
            waitedMs: lease.waitedMs,
            ...(lease.tookOverFrom ? { tookOverFrom: lease.tookOverFrom } : {}),
          },
        }
      : {}),
  });
  const done = (
    result: Pick<DeployResult, 'ok' | 'rolledBack' | 'notRolledBack' | 'failure'>,
  ): DeployResult => ({
    ...base(),
    ...result,
    workloads,
    durationMs: clock.now() - started,
  });

  if (options.dryRun) {
    applied.push(...(await prune(run)));
    for (const w of workloads) w.message = 'dry run: nothing was changed';
    return done({ ok: true, rolledBack: false, notRolledBack: [] });
  }
  await waitForAll(run);
  const failed = workloads.filter((w) => !w.ok);
  if (failed.length === 0) {
    for (const w of workloads)
      if (w.revision && w.revision !== lastGoodBefore.get(w)) await recordLastGood(client, namespace, w, log);
    // Only now: a rollback needs what the previous release used, so nothing is pruned before success.
    applied.push(...(await prune(run)));
    return done({ ok: true, rolledBack: false, notRolledBack: [] });
  }
  let failure = failed.map((w) => w.message).join('; ');
  if (lease?.lost.aborted) failure = `the deploy lock was lost to another run (${failure})`;
  log.warning(`Rollout failed: ${failure}`);
  if (!options.rollbackOnFailure) return done({ ok: false, failure, rolledBack: false, notRolledBack: [] });
  // Every workload this run changed goes back, not only the failed ones: a release moves together.
  const rolledBack = await rollBack(run, changedBy(workloads, applied));
  return done({ ok: false, failure, rolledBack, notRolledBack: notRolledBack(workloads) });
}

/** The workloads to wait for, each with what ran before: its revision, the rollback target and replicas. */
async function workloadsBefore(
  options: DeployOptions,
  resolved: ResolvedObject[],
): Promise<{ workloads: WorkloadResult[]; lastGoodBefore: Map<WorkloadResult, string | undefined> }> {
  const { client, namespace } = options;
  // Deployments first, as they were the only workloads waited for: the outputs name the first.
  const waited = [
    ...resolved.filter((o) => o.object.kind === 'Deployment'),
    ...resolved.filter((o) => o.object.kind !== 'Deployment' && isWaitedKind(o.object.kind)),
  ];
  const workloads: WorkloadResult[] = [];
  const lastGoodBefore = new Map<WorkloadResult, string | undefined>();
  for (const d of waited) {
    const kind = d.object.kind as WorkloadKind;
    const before = await revisionBefore(client, namespace, kind, d.object.metadata.name!);
    const lastGood = before?.object.metadata.annotations?.[LAST_GOOD_REVISION_ANNOTATION];
    const target = lastGood || before?.revision;
    const recorded = Number(
      before?.object.metadata.annotations?.[LAST_GOOD_REPLICAS_ANNOTATION] ?? Number.NaN,
    );
    const rollbackReplicas =
      lastGood && Number.isInteger(recorded) && recorded >= 0 ? recorded : replicasOf(before?.object);
    const appliedReplicas = replicasOf(d.object as WorkloadObject);
    const workload: WorkloadResult = {
      kind,
      name: d.object.metadata.name!,
      ok: true,
      message: '',
      ...(before?.revision ? { previousRevision: before.revision } : {}),
      ...(target ? { rollbackTarget: target } : {}),
      ...(appliedReplicas !== undefined ? { appliedReplicas } : {}),
      ...(appliedReplicas !== undefined && rollbackReplicas !== undefined ? { rollbackReplicas } : {}),
      images: workloadImages(d.object),
      previousImages: before ? workloadImages(before.object) : [],
      timeline: [],
      problems: [],
      diagnostics: [],
    };
    workloads.push(workload);
    lastGoodBefore.set(workload, lastGood);
  }
  return { workloads, lastGoodBefore };
}

const changedBy = (workloads: WorkloadResult[], applied: AppliedObject[]) =>
  workloads.filter((w) =>
    applied.some((a) => a.kind === w.kind && a.name === w.name && a.action !== 'unchanged'),
  );

/**
 * The API server checks every object (validation, admission, field conflicts) before the first
 * real change, so an object late in the apply order cannot fail after earlier ones were changed;
 * an apply that still fails part-way has the Deployments it changed undone.
 */
async function validateAndApply(run: DeployRun): Promise<AppliedObject[]> {
  const { options, resolved } = run;
  const { client, logger: log, namespace } = options;
  if (!options.dryRun) {
    await log.group(`Validating ${resolved.length} object(s) with a server-side dry run`, () =>
      applyObjects({ client, objects: resolved, dryRun: true, forceConflicts: options.forceConflicts }),
    );
    await options.beforeApply?.();
  }
  try {
    return await log.group(
      `${options.dryRun ? 'Dry run: applying' : 'Applying'} ${resolved.length} object(s) to ${namespace}`,
      () =>
        applyObjects({
          client,
          objects: resolved,
          dryRun: options.dryRun,
          forceConflicts: options.forceConflicts,
          onApplied: (a) =>
            log.info(
              `${a.kind}/${a.name} ${options.dryRun && a.action !== 'unchanged' ? `would be ${a.action}` : a.action}`,
            ),
        }),
    );
  } catch (error) {
    // Failed part-way (the server changed its mind after the dry run): undo the Deployments already changed.
    const touched = changedBy(run.workloads, (error as { applied?: AppliedObject[] }).applied ?? []);
    if (options.dryRun || touched.length === 0 || !options.rollbackOnFailure) throw error;
    await rollBack(run, touched);
    const missed = notRolledBack(touched);
    if (missed.length > 0)
      throw new PipelineError(
        `${errorMessage(error)}. The apply stopped part-way and was NOT ROLLED BACK: ${missed.map((m) => m.message).join('; ')}`,
        { cause: error },
      );
    const undone = touched.map((w) => `${w.name}: ${w.rollback?.message ?? ''}`).join('; ');
    throw new PipelineError(`${errorMessage(error)}. The apply stopped part-way; ${undone}`, {
      cause: error,
    });
  }
}

/**
 * Objects of this app and environment that the manifests no longer hold, when the prune input
 * asks. Generations of the configuration the rendered templates use are the exception: the one
 * the previous revision uses stays, so `kubectl rollout undo` (or a rollback to that revision)
 * finds it; only older ones go.
 */
async function prune(run: DeployRun): Promise<AppliedObject[]> {
  const { options } = run;
  if (!options.prune) return [];
  const { client, logger: log, namespace, app, environment, dryRun } = options;
  const live = run.resolved.flatMap((o) => podTemplates(o.object));
  const generation = isConfigGeneration(live);
  const pruned = await pruneObjects({
    client,
    catalog: run.catalog,
    namespace,
    app,
    environment,
    keep: run.resolved,
    dryRun,
    candidate: (kind, object) => !generation(kind, object.metadata.name!),
    onSkipped: (kinds) =>
      log.info(
        `Not pruning ${kinds.join(', ')}: the deployer's Role does not allow listing them, so none were applied by it`,
      ),
  });
  for (const p of pruned) log.info(`${p.kind}/${p.name} ${dryRun ? 'would be pruned' : 'pruned'}`);
  let previous: { spec?: object }[];
  try {
    previous = await previousTemplates(run);
  } catch (error) {
    log.warning(
      `Older configuration generations were not pruned: the revision history could not be read (${errorMessage(error)})`,
    );
    return pruned;
  }
  const older = await pruneOlderGenerations({
    client,
    namespace,
    app,
    environment,
    live,
    previous,
    logger: log,
    dryRun,
  });
  return [...pruned, ...older];
}

/**
 * Per workload, the template `kubectl rollout undo` goes back to: the highest revision below the
 * current one. A dry run changed nothing, so its current revision is kept too: the release would
 * make it the previous one unless its template is unchanged.
 */
async function previousTemplates(run: DeployRun): Promise<{ spec?: object }[]> {
  const { client, namespace, dryRun } = run.options;
  const templates: { spec?: object }[] = [];
  for (const w of run.workloads) {
    const object = await client.getJson<WorkloadObject>(pathOf(w.kind, namespace, w.name));
    if (!object) continue;
    const history = await workloadHistory(client, namespace, w.kind, object);
    const current = currentRevision(w.kind, object, history);
    if (!current) continue;
    if (dryRun) templates.push(current.template);
    const before = chooseRollbackRevision(history, current.revision);
    if (before) templates.push(before.template);
  }
  return templates;
}

/** Every workload's rollout, waited for together; a lost lock ends the waits. */
async function waitForAll(run: DeployRun): Promise<void> {
  const { options, clock, lease, workloads } = run;
  const { client, logger: log, namespace } = options;
  const deadline = clock.now() + options.timeoutMs;
  const signal = lease
    ? AbortSignal.any([lease.lost, ...(options.signal ? [options.signal] : [])])
    : options.signal;
  await log.group(`Waiting for ${workloads.length} ${workloadWords(workloads)} to roll out`, () =>
    Promise.all(
      workloads.map(async (w) => {
        try {
          const outcome = await waitForWorkload({
            client,
            namespace,
            kind: w.kind,
            name: w.name,
            deadline,
            stuckGraceMs: options.stuckGraceMs,
            clock,
            logger: log,
            ...(signal ? { signal } : {}),
          });
          w.ok = outcome.ok;
          w.message = outcome.message;
          w.timeline = outcome.timeline;
          w.problems = outcome.problems;
          if (outcome.revision) w.revision = outcome.revision;
          if (!outcome.ok)
            w.diagnostics = await podDiagnostics(client, namespace, outcome.problems).catch(() => []);
        } catch (error) {
          w.ok = false;
          w.message = `waiting for ${KIND_WORDS[w.kind]} "${w.name}" failed: ${errorMessage(error)}`;
        }
      }),
    ),
  );
}

/**
 * Puts back what this run changed, workload by workload; a failure of one does not stop the
 * others. Never after the lock was lost: the cluster may already hold another run's release.
 */
async function rollBack(run: DeployRun, changed: WorkloadResult[]): Promise<boolean> {
  const { options, clock, lease } = run;
  const log = options.logger;
  if (lease?.lost.aborted) {
    for (const w of changed)
      w.rollback = {
        rolledBack: false,
        ok: false,
        failed: true,
        waitMessage: '',
        message: 'the deploy lock was lost to another run, so nothing was rolled back',
      };
    return false;
  }
  let any = false;
  await log.group(`Rolling back ${changed.length} ${workloadWords(changed)}`, async () => {
    const rollbackDeadline = clock.now() + options.timeoutMs;
    // The same patience as the apply: the client retries each request, and a step that still
    // fails on an API fault is tried again with backoff until the rollback's deadline.
    const again = <T>(what: string, step: () => Promise<T>) =>
      retry(step, {
        attempts: 5,
        baseDelayMs: 500,
        maxDelayMs: 8000,
        deadline: rollbackDeadline,
        clock,
        classify: transientKubeFault,
        onRetry: ({ attempt, delayMs, reason }) =>
          log.warning(`${what}: ${reason}; trying again (${attempt} of 4) in ${delayMs} ms`),
      });
    for (const w of changed) {
      try {
        if (await rollBackOne(run, w, again, rollbackDeadline)) any = true;
      } catch (error) {
        w.rollback = {
          rolledBack: false,
          ok: false,
          failed: true,
          waitMessage: '',
          message: `rolling back ${KIND_WORDS[w.kind]} "${w.name}" failed: ${errorMessage(error)}`,
        };
        log.error(`NOT ROLLED BACK: ${w.rollback.message}`);
      }
    }
  });
  return any;
}

/** One workload back to its rollback target, with the replicas that release ran; true when it went back. */
async function rollBackOne(
  run: DeployRun,
  w: WorkloadResult,
  again: <T>(what: string, step: () => Promise<T>) => Promise<T>,
  rollbackDeadline: number,
): Promise<boolean> {
  const { options, clock } = run;
  const { client, logger: log, namespace } = options;
  if (!w.rollbackTarget) {
    w.rollback = {
      rolledBack: false,
      ok: false,
      waitMessage: '',
      message: `${KIND_WORDS[w.kind]} "${w.name}" has no previous revision to roll back to (first deploy)`,
    };
    log.info(w.rollback.message);
    return false;
  }
  const result = await again(`Rolling back ${KIND_WORDS[w.kind]} "${w.name}"`, () =>
    rollbackWorkload(client, namespace, w.kind, w.name, w.rollbackTarget),
  );
  log.info(result.message);
  if (!result.rolledBack) {
    // Template already the target: nothing to undo. Target's ReplicaSet gone: the release stays.
    const stays = result.toRevision === undefined;
    w.rollback = { ...result, ok: false, waitMessage: '', ...(stays ? { failed: true } : {}) };
    return false;
  }
  if (w.rollbackReplicas !== undefined && w.rollbackReplicas !== w.appliedReplicas) {
    const replicas = w.rollbackReplicas;
    await again(`Restoring the replicas of ${KIND_WORDS[w.kind]} "${w.name}"`, () =>
      mergePatch(client, pathOf(w.kind, namespace, w.name), { spec: { replicas } }, 'pipeline-rollback'),
    );
    log.info(
      `restored ${KIND_WORDS[w.kind]} "${w.name}" to ${replicas} replica(s), as its previous release ran`,
    );
    w.appliedReplicas = replicas;
  }
  const outcome = await again(`Waiting for the rollback of ${KIND_WORDS[w.kind]} "${w.name}"`, () =>
    waitForWorkload({
      client,
      namespace,
      kind: w.kind,
      name: w.name,
      deadline: rollbackDeadline,
      stuckGraceMs: options.stuckGraceMs,
      clock,
      logger: log,
    }),
  );
  w.rollback = { ...result, ok: outcome.ok, waitMessage: outcome.message };
  if (outcome.revision) w.revision = outcome.revision;
  if (outcome.ok) await recordLastGood(client, namespace, w, log);
  return true;
}
