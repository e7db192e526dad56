import { errorMessage, type Logger } from '../core/index.ts';
import { type AppliedObject, pruneObjects } from '../kube/apply.ts';
import type { KubeClient } from '../kube/client.ts';
import { configReferences } from '../kube/manifests.ts';
import { ResourceCatalog } from '../kube/resources.ts';
import type { DeploymentObject } from '../kube/rollout.ts';

/** kustomize's generator suffix: a dash and ten characters of its hash alphabet. */
export const GENERATED_SUFFIX = /-[bcdfghkmt2-9]{10}$/;
/** The name a generated ConfigMap or Secret has in the overlay, before its content hash. */
const generationBase = (name: string) => name.replace(GENERATED_SUFFIX, '');

type Template = NonNullable<NonNullable<DeploymentObject['spec']>['template']>;

/**
 * Once a canary or blue-green release is final: the older generations of the generated
 * ConfigMaps and Secrets its pod template uses (same name before the hash, our app and
 * environment labels) are deleted, except the ones the live template and the previous one use,
 * so a rollback still finds its configuration. The deletion is deploy-env's prune, narrowed to
 * those; a failure is reported and leaves the release as it is (it is already final).
 */
export async function pruneOlderGenerations(o: {
  client: KubeClient;
  namespace: string;
  app: string;
  environment: string;
  live: Template[];
  previous: Template[];
  logger: Logger;
}): Promise<AppliedObject[]> {
  const uses = (templates: Template[]) =>
    new Set(templates.flatMap((t) => [...configReferences((t.spec ?? {}) as Record<string, unknown>)]));
  const live = uses(o.live);
  const kept = new Set([...live, ...uses(o.previous)]);
  const families = new Set(
    [...live].filter((ref) => GENERATED_SUFFIX.test(ref)).map((ref) => generationBase(ref)),
  );
  if (families.size === 0) return [];
  try {
    const pruned = await pruneObjects({
      client: o.client,
      catalog: new ResourceCatalog(o.client),
      namespace: o.namespace,
      app: o.app,
      environment: o.environment,
      keep: [],
      dryRun: false,
      kinds: ['ConfigMap', 'Secret'],
      candidate: (kind, object) => {
        const ref = `${kind}/${object.metadata.name}`;
        return GENERATED_SUFFIX.test(ref) && families.has(generationBase(ref)) && !kept.has(ref);
      },
      source: 'cluster (an older generation of the configuration)',
      onSkipped: (kinds) =>
        o.logger.info(
          `Not pruning older generations of ${kinds.join(', ')}: the Role does not allow listing them`,
        ),
    });
    for (const p of pruned)
      o.logger.info(`${p.kind}/${p.name} pruned: an older generation of its configuration`);
    return pruned;
  } catch (error) {
    o.logger.warning(`Older configuration generations were not pruned: ${errorMessage(error)}`);
    return [];
  }
}
