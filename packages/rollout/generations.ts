import { errorMessage, type Logger } from '../core/index.ts';
import { type AppliedObject, pruneObjects } from '../kube/apply.ts';
import type { KubeClient } from '../kube/client.ts';
import { configReferences } from '../kube/manifests.ts';
import { ResourceCatalog } from '../kube/resources.ts';

/** kustomize's generator suffix: a dash and ten characters of its hash alphabet. */
export const GENERATED_SUFFIX = /-[bcdfghkmt2-9]{10}$/;
/** The name a generated ConfigMap or Secret has in the overlay, before its content hash. */
const generationBase = (name: string) => name.replace(GENERATED_SUFFIX, '');

/** A pod template of any workload kind, rendered or read back from its revision history. */
type Template = { spec?: object };

const uses = (templates: Template[]) =>
  new Set(templates.flatMap((t) => [...configReferences((t.spec ?? {}) as Record<string, unknown>)]));

/**
 * Whether a ConfigMap or Secret (by kind and name) is a generation of configuration these
 * templates use: kustomize's hash suffix on a name that, before the hash, is one they use.
 * deploy-env's prune leaves these to pruneOlderGenerations, which keeps the previous one.
 */
export function isConfigGeneration(templates: Template[]): (kind: string, name: string) => boolean {
  return inFamilies(generationFamilies(templates));
}

const generationFamilies = (templates: Template[]) =>
  new Set([...uses(templates)].filter((ref) => GENERATED_SUFFIX.test(ref)).map((ref) => generationBase(ref)));

function inFamilies(families: Set<string>): (kind: string, name: string) => boolean {
  return (kind, name) => {
    const ref = `${kind}/${name}`;
    return (
      (kind === 'ConfigMap' || kind === 'Secret') &&
      GENERATED_SUFFIX.test(ref) &&
      families.has(generationBase(ref))
    );
  };
}

/**
 * Once a release is final (a canary promotion, a blue-green switch, a rolling deploy that rolled
 * out): the older generations of the generated ConfigMaps and Secrets its pod templates use (same
 * name before the hash, our app and environment labels) are deleted, except the ones the live
 * templates and the previous ones use, so a rollback still finds its configuration. The deletion
 * is deploy-env's prune, narrowed to those; a failure is reported and leaves the release as it is
 * (it is already final).
 */
export async function pruneOlderGenerations(o: {
  client: KubeClient;
  namespace: string;
  app: string;
  environment: string;
  live: Template[];
  previous: Template[];
  logger: Logger;
  /** deploy-env's dry run: the server is asked what would be deleted, nothing is. */
  dryRun?: boolean;
}): Promise<AppliedObject[]> {
  const families = generationFamilies(o.live);
  if (families.size === 0) return [];
  const generation = inFamilies(families);
  const kept = new Set([...uses(o.live), ...uses(o.previous)]);
  try {
    const pruned = await pruneObjects({
      client: o.client,
      catalog: new ResourceCatalog(o.client),
      namespace: o.namespace,
      app: o.app,
      environment: o.environment,
      keep: [],
      dryRun: o.dryRun ?? false,
      kinds: ['ConfigMap', 'Secret'],
      candidate: (kind, object) =>
        generation(kind, object.metadata.name!) && !kept.has(`${kind}/${object.metadata.name}`),
      source: 'cluster (an older generation of the configuration)',
      onSkipped: (kinds) =>
        o.logger.info(
          `Not pruning older generations of ${kinds.join(', ')}: the Role does not allow listing them`,
        ),
    });
    for (const p of pruned)
      o.logger.info(
        `${p.kind}/${p.name} ${o.dryRun ? 'would be pruned' : 'pruned'}: an older generation of its configuration`,
      );
    return pruned;
  } catch (error) {
    o.logger.warning(`Older configuration generations were not pruned: ${errorMessage(error)}`);
    return [];
  }
}
