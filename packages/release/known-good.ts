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

const sameRelease = (a: RecordedDeployment, b: RecordedDeployment) =>
  JSON.stringify(a.payload.images ?? {}) === JSON.stringify(b.payload.images ?? {}) &&
  (a.payload.configHash ?? '') === (b.payload.configHash ?? '');

/**
 * Which deployment to return to. `target` is a deployment id, or 'previous': the newest successful
 * release before the one the environment runs now (its newest successful deployment), with a
 * different image or configuration.
 */
export function pickKnownGood(
  deployments: RecordedDeployment[],
  app: string,
  environment: string,
  target: number | 'previous',
): RecordedDeployment {
  const ours = deployments
    .filter((d) => d.environment === environment && d.payload.app === app)
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id - a.id);
  if (target !== 'previous') {
    const d = ours.find((x) => x.id === target);
    if (!d) throw new KnownGoodError(`deployment ${target} is not a deployment of ${app} to ${environment}`);
    if (d.state !== 'success' && d.state !== 'inactive')
      throw new KnownGoodError(
        `deployment ${target} ended ${d.state}, not success: it is not known to be good`,
      );
    releaseOf(d);
    return d;
  }
  // GitHub marks older successful deployments inactive when a newer one succeeds in a
  // non-transient environment: those were good too.
  const good = ours.filter((d) => d.state === 'success' || d.state === 'inactive');
  const live = good[0];
  if (!live) throw new KnownGoodError(`${environment} has no successful deployment of ${app} on record`);
  const previous = good.find((d) => !sameRelease(d, live) && !isRollback(d));
  if (!previous)
    throw new KnownGoodError(
      `${environment} has no successful release of ${app} before deployment ${live.id} (the one it runs)`,
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
  if (order <= 0)
    return {
      ok: true,
      line:
        order === 0
          ? `the database is at ${current}, as that release left it`
          : `the database is at ${current}, behind that release's ${wanted}: up migrations run first`,
    };
  if (!allowDown)
    return {
      ok: false,
      line: `the database schema is at ${current}, past ${wanted} that the release knew; set down-migrations to revert to ${wanted} first (only when down migrations exist)`,
    };
  return { ok: true, downTo: wanted, line: `the database goes down from ${current} to ${wanted} first` };
}
