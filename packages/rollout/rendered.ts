import { createHash } from 'node:crypto';
import { InputError, type Logger } from '../core/index.ts';
import { type AppliedObject, applyObjects, resolveObjects } from '../kube/apply.ts';
import { stampKeyedSecretChecksums } from '../kube/checksum-key.ts';
import type { KubeClient } from '../kube/client.ts';
import { imageRepository, loadManifests, type SourcedObject } from '../kube/manifests.ts';
import { ResourceCatalog } from '../kube/resources.ts';
import type { DeploymentObject } from '../kube/rollout.ts';
import { checkNamespaceScope, prepareObjects } from './deploy.ts';

/**
 * An environment's overlay rendered for a canary or blue-green release: the app's Deployment with
 * the new image (its template is what the canary or the idle colour runs, and what the stable
 * takes on promotion), and everything else the overlay holds, applied beside it. Content-hashed
 * ConfigMap names (kustomize generators) let the old pods keep their configuration meanwhile.
 */
export interface RenderedRelease {
  deployment: DeploymentObject;
  /** A hash of the rendered pod template: equal hashes mean nothing to roll out. */
  templateHash: string;
  supporting: SourcedObject[];
  all: SourcedObject[];
}

export const TEMPLATE_HASH_ANNOTATION = 'pipeline.dev/template-hash';

export interface ReleaseSource {
  kustomize?: string;
  manifests?: string[];
  cwd: string;
}

export async function renderRelease(options: {
  source: ReleaseSource;
  deployment: string;
  image: string;
  app: string;
  environment: string;
  /** Where the release goes: the Secret checksums on the template are keyed by that namespace's key. */
  cluster: { client: KubeClient; namespace: string; logger: Logger };
}): Promise<RenderedRelease> {
  const inputName = options.source.kustomize ? 'kustomize' : 'manifests';
  const loaded = await loadManifests({
    ...(options.source.kustomize ? { kustomize: options.source.kustomize } : {}),
    ...(options.source.manifests ? { manifests: options.source.manifests } : {}),
    cwd: options.source.cwd,
  });
  const { objects } = prepareObjects({
    objects: loaded,
    images: new Map([[imageRepository(options.image), options.image]]),
    app: options.app,
    environment: options.environment,
  });
  await stampKeyedSecretChecksums(objects, options.cluster.client, options.cluster.namespace, {
    dryRun: false,
    logger: options.cluster.logger,
  });
  const found = objects.find(
    (o) => o.object.kind === 'Deployment' && o.object.metadata.name === options.deployment,
  );
  if (!found)
    throw new InputError(
      inputName,
      `renders no Deployment named ${JSON.stringify(options.deployment)}`,
      `manifests holding the Deployment ${options.deployment} (they hold: ${
        objects
          .filter((o) => o.object.kind === 'Deployment')
          .map((o) => o.object.metadata.name)
          .join(', ') || 'no Deployment'
      })`,
    );
  const deployment = found.object as DeploymentObject;
  const template = deployment.spec?.template;
  if (!template)
    throw new InputError(
      inputName,
      `renders the Deployment ${options.deployment} without a pod template`,
      'a Deployment with spec.template',
    );
  const templateHash = hashTemplate(template);
  template.metadata = {
    ...template.metadata,
    annotations: { ...(template.metadata?.annotations ?? {}), [TEMPLATE_HASH_ANNOTATION]: templateHash },
  };
  return { deployment, templateHash, supporting: objects.filter((o) => o !== found), all: objects };
}

/** The hash a live Deployment's template was rendered with, when a release of ours wrote it. */
/** The hash stamped on a rendered pod template, computed before it is stamped: equal hashes, nothing to roll out. */
export function hashTemplate(template: unknown): string {
  return createHash('sha256').update(JSON.stringify(template)).digest('hex').slice(0, 16);
}

export function templateHashOf(d: DeploymentObject | undefined): string | undefined {
  return d?.spec?.template?.metadata?.annotations?.[TEMPLATE_HASH_ANNOTATION];
}

/**
 * Server-side apply of the overlay's other objects. With `dryRun` the server validates them and
 * nothing changes, so a bad overlay fails before the first change.
 */
export async function applySupporting(options: {
  client: KubeClient;
  namespace: string;
  objects: SourcedObject[];
  dryRun: boolean;
  logger: Logger;
}): Promise<AppliedObject[]> {
  if (options.objects.length === 0) return [];
  const copies = options.objects.map((o) => ({ ...o, object: structuredClone(o.object) }));
  const resolved = await resolveObjects(copies, new ResourceCatalog(options.client), options.namespace);
  checkNamespaceScope(resolved, options.namespace, [], 'rollout');
  const applied = await applyObjects({
    client: options.client,
    objects: resolved,
    dryRun: options.dryRun,
    forceConflicts: true,
  });
  if (!options.dryRun)
    for (const a of applied)
      if (a.action !== 'unchanged') options.logger.info(`${a.kind}/${a.name} ${a.action}`);
  return applied;
}
