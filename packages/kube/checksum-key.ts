import { randomBytes } from 'node:crypto';
import { type Logger, PipelineError } from '../core/index.ts';
import { LABEL_MANAGED_BY } from './apply.ts';
import { KubeApiError, type KubeClient } from './client.ts';
import { type SourcedObject, stampSecretChecksums, templatesUseRenderedSecrets } from './manifests.ts';

/**
 * The key of the Secret checksums on pod templates, one per namespace, kept in the cluster next to
 * the Secrets it covers: whoever may read it may read those Secrets anyway, and whoever may only
 * read Deployments (a plan's Role) cannot recompute a checksum from a guessed Secret value.
 */
export const CHECKSUM_KEY_SECRET = 'pipeline-checksum-key';
const KEY_FIELD = 'key';

type SecretObject = { data?: Record<string, string> };

function keyOf(secret: SecretObject | undefined): Buffer | undefined {
  const encoded = secret?.data?.[KEY_FIELD];
  if (!encoded) return undefined;
  const key = Buffer.from(encoded, 'base64');
  return key.length >= 32 ? key : undefined;
}

/**
 * The namespace's checksum key, created on first need. Two first releases racing both POST; the
 * second gets 409 and reads the winner's key, so every writer hashes with the same one. A dry run
 * writes nothing: without a key yet it hashes with a throwaway one (the pods would roll anyway,
 * as the first keyed release changes the annotation).
 */
export async function checksumKey(
  client: KubeClient,
  namespace: string,
  options: { dryRun: boolean; logger: Logger },
): Promise<Buffer> {
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;
  const existing = keyOf(await client.getJson<SecretObject>(`${path}/${CHECKSUM_KEY_SECRET}`));
  if (existing) return existing;
  const key = randomBytes(32);
  if (options.dryRun) return key;
  try {
    await client.request('POST', path, {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: CHECKSUM_KEY_SECRET,
          labels: { [LABEL_MANAGED_BY]: 'pipeline' },
          annotations: {
            'pipeline.dev/purpose': 'key of the pipeline.dev/secret-checksum annotation on pod templates',
          },
        },
        type: 'Opaque',
        data: { [KEY_FIELD]: key.toString('base64') },
      },
      // A repeat after a 5xx that did create it answers 409, handled below.
      idempotent: true,
    });
    options.logger.info(`Created the Secret checksum key ${CHECKSUM_KEY_SECRET} in ${namespace}`);
    return key;
  } catch (error) {
    if (error instanceof KubeApiError && error.status === 404)
      throw new PipelineError(`Namespace ${namespace} does not exist: create it before this release`);
    if (!(error instanceof KubeApiError && error.status === 409)) throw error;
  }
  const winner = keyOf(await client.getJson<SecretObject>(`${path}/${CHECKSUM_KEY_SECRET}`));
  if (!winner)
    throw new PipelineError(
      `Secret ${namespace}/${CHECKSUM_KEY_SECRET} exists without a ${KEY_FIELD} of 32 bytes or more; delete it and deploy again`,
    );
  return winner;
}

/** Stamps the Secret checksums of the rendered templates, reading (or creating) the key only when a template uses a rendered Secret. */
export async function stampKeyedSecretChecksums(
  objects: SourcedObject[],
  client: KubeClient,
  namespace: string,
  options: { dryRun: boolean; logger: Logger },
): Promise<void> {
  if (!templatesUseRenderedSecrets(objects)) return;
  stampSecretChecksums(objects, await checksumKey(client, namespace, options));
}
