/**
 * A known-good release: what a previous successful GitHub deployment recorded (image digest,
 * configuration hash, revision, migrations version, strategy, the commit), picked from the
 * environment's history, and whether the database still fits it.
 */

export interface ReleaseRecord {
  app: string;
  /** Image references by container, each pinned by digest. */
  images: Record<string, string>;
  /** sha256 of the rendered manifests, images left out: the configuration that release ran. */
  configHash?: string;
  revision?: string;
  /** Newest migration applied when that release finished; '' for no migrations, '0' for none applied. */
  migrationsVersion?: string;
  strategy?: string;
}

export interface RecordedDeployment {
  id: number;
  sha: string;
  environment: string;
  createdAt: string;
  /** The newest status's state: success, failure, error, inactive, in_progress, ... */
  state: string;
  payload: Record<string, unknown>;
}

export class KnownGoodError extends Error {}

/** The release a deployment's payload describes; throws naming what it lacks. */
export function releaseOf(d: RecordedDeployment): ReleaseRecord {
  const p = d.payload;
  const images = (p.images ?? {}) as Record<string, unknown>;
  const refs = Object.entries(images).filter(([, v]) => typeof v === 'string') as [string, string][];
  if (refs.length === 0) throw new KnownGoodError(`deployment ${d.id} records no image`);
  const unpinned = refs.find(([, v]) => !/@sha256:[0-9a-f]{64}$/.test(v));
  if (unpinned)
    throw new KnownGoodError(
      `deployment ${d.id} records ${unpinned[1]}, not pinned by digest: it cannot be redeployed exactly`,
    );
  const text = (k: string) => (typeof p[k] === 'string' && p[k] !== '' ? { [k]: p[k] as string } : {});
  return {
    app: String(p.app ?? ''),
    images: Object.fromEntries(refs),
    ...text('configHash'),
    ...text('revision'),
    ...text('migrationsVersion'),
    ...text('strategy'),
  };
}

/** A deployment that was itself a return to a known-good release. */
const isRollback = (d: RecordedDeployment) => d.payload.rollback !== undefined && d.payload.rollback !== null;

/** The deployment id a rollback returned to, when it records one. */
const rollbackTarget = (d: RecordedDeployment): number | undefined => {
  const to = (d.payload.rollback as { to?: unknown } | undefined)?.to;
  const id = typeof to === 'string' ? Number(to) : to;
  return typeof id === 'number' && Number.isInteger(id) ? id : undefined;
};

/**
 * A deploy the release gate refused: recorded so the history shows it, but it changed nothing in
 * the cluster and records no images, so it is never a release.
 */
const isBlocked = (d: RecordedDeployment) =>
  d.payload.blocked !== undefined && d.payload.blocked !== null && d.payload.blocked !== false;

/** A deploy that ran: not blocked, and it records what it deployed. */
const isRealDeploy = (d: RecordedDeployment) =>
  !isBlocked(d) && Object.keys((d.payload.images ?? {}) as object).length > 0;

const sameRelease = (a: RecordedDeployment, b: RecordedDeployment) =>
  JSON.stringify(a.payload.images ?? {}) === JSON.stringify(b.payload.images ?? {}) &&
  (a.payload.configHash ?? '') === (b.payload.configHash ?? '');

const newestFirst = (a: RecordedDeployment, b: RecordedDeployment) =>
  b.createdAt.localeCompare(a.createdAt) || b.id - a.id;

/**
 * Which deployment to return to. `target` is a deployment id, or 'previous': the newest good
 * release older than the one the environment runs now (its newest successful real deploy; for a
 * rollback, the release it returned to), with a different image or configuration, that was not
 * itself abandoned: every release a rollback went back over was rolled back from, so a second
 * rollback goes further back instead of forward to the release just left.
 */
export function pickKnownGood(
  deployments: RecordedDeployment[],
  app: string,
  environment: string,
  target: number | 'previous',
): RecordedDeployment {
  const ours = deployments
    .filter((d) => d.environment === environment && d.payload.app === app)
    .sort(newestFirst);
  if (target !== 'previous') {
    const d = ours.find((x) => x.id === target);
    if (!d) throw new KnownGoodError(`deployment ${target} is not a deployment of ${app} to ${environment}`);
    if (isBlocked(d))
      throw new KnownGoodError(
        `deployment ${target} is a deploy the release gate blocked: it never ran, so it is not a release`,
      );
    if (d.state !== 'success' && d.state !== 'inactive')
      throw new KnownGoodError(
        `deployment ${target} ended ${d.state}, not success: it is not known to be good`,
      );
    releaseOf(d);
    return d;
  }
  // GitHub marks older successful deployments inactive when a newer one succeeds in a
  // non-transient environment: those were good too. A blocked deploy is recorded inactive as
  // well, so it is told apart by its payload.
  const good = ours.filter((d) => (d.state === 'success' || d.state === 'inactive') && isRealDeploy(d));
  const live = good[0];
  if (!live) throw new KnownGoodError(`${environment} has no successful deployment of ${app} on record`);
  // Each rollback abandoned everything deployed after the release it returned to.
  const abandoned = new Set<number>();
  for (const r of good.filter(isRollback)) {
    const to = ours.find((d) => d.id === rollbackTarget(r));
    if (!to) continue;
    for (const d of ours) if (newestFirst(d, to) < 0 && newestFirst(d, r) > 0) abandoned.add(d.id);
  }
  const liveTarget = isRollback(live) ? ours.find((d) => d.id === rollbackTarget(live)) : undefined;
  const anchor = liveTarget ?? live;
  const previous = good.find(
    (d) => newestFirst(d, anchor) > 0 && !sameRelease(d, live) && !isRollback(d) && !abandoned.has(d.id),
  );
  if (!previous)
    throw new KnownGoodError(
      `${environment} has no successful release of ${app} before deployment ${anchor.id} (the one it runs)${abandoned.size ? `, leaving out ${[...abandoned].join(', ')} that a rollback left` : ''}`,
    );
  releaseOf(previous);
  return previous;
}

function compareVersions(a: string, b: string): number {
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

export interface SchemaCheck {
  ok: boolean;
  /** The version to go down to, when the database moved past the release and downs are asked for. */
  downTo?: string;
  /** The version to go up to first, when the database is behind the release (its code expects those migrations). */
  upTo?: string;
  line: string;
}

/**
 * Whether the release fits the database now. A newer schema is refused unless `allowDown`: the
 * old code may not read it (a dropped column it still selects), and a down migration is a
 * deliberate choice, not something a rollback does on its own. Whether the downs exist is for
 * run-migrations to check, which refuses a migration without one.
 */
export function checkSchema(release: ReleaseRecord, currentVersion: string, allowDown: boolean): SchemaCheck {
  const wanted = release.migrationsVersion;
  if (wanted === undefined)
    return {
      ok: false,
      line: 'the deployment records no migrations version: cannot tell whether the schema fits it',
    };
  if (wanted === '') return { ok: true, line: 'the release ran no migrations' };
  const current = currentVersion || '0';
  const order = compareVersions(current, wanted);
  if (order === 0) return { ok: true, line: `the database is at ${current}, as that release left it` };
  if (order < 0)
    return {
      ok: true,
      upTo: wanted,
      line: `the database is at ${current}, behind that release's ${wanted}: its migrations up to ${wanted} are applied first`,
    };
  if (!allowDown)
    return {
      ok: false,
      line: `the database schema is at ${current}, past ${wanted} that the release knew; set down-migrations to revert to ${wanted} first (only when down migrations exist)`,
    };
  return { ok: true, downTo: wanted, line: `the database goes down from ${current} to ${wanted} first` };
}
