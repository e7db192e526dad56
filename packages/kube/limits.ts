import { InputError, PipelineError } from '../core/index.ts';
import { podTemplates, type SourcedObject } from './manifests.ts';

/**
 * The most replicas a deploy sets on one workload. The API takes any int32, but a typo of a few
 * digits would ask the cluster for millions of pods; 10000 is beyond any single Deployment we know.
 */
export const MAX_REPLICAS = 10_000;
/** etcd's request limit, which the API server applies to one object (ConfigMaps and Secrets say 1 MiB). */
export const MAX_OBJECT_BYTES = 1024 * 1024;
/** The API server's limit on all annotations of one object together (keys and values). */
export const MAX_ANNOTATION_BYTES = 256 * 1024;

/** Namespaces a deploy never changes, whatever its inputs say: the cluster's own. */
export const PROTECTED_NAMESPACES = ['kube-system', 'kube-public', 'default'];

/** Whether a replica count is an integer from 0 to MAX_REPLICAS. */
export function validReplicas(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= MAX_REPLICAS;
}

// The distribution reference grammar (github.com/distribution/reference, regexp.go), piece by piece.
const ALPHANUMERIC = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALPHANUMERIC}(?:${SEPARATOR}${ALPHANUMERIC})*`;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const NAME = `(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const REFERENCE = new RegExp(`^(${NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
/** Registered algorithms and their encoded lengths (OCI image spec, descriptor.md). */
const DIGEST_LENGTHS: Record<string, number> = { sha256: 64, sha512: 128 };

export const IMAGE_REFERENCE_FORM =
  'an image reference such as ghcr.io/acme/shop:1.4.2 or ghcr.io/acme/shop@sha256:<64 hex digits> (lowercase name, tag of letters, digits, _ . -)';

/** Why a string is not an image reference by the distribution grammar, or undefined when it is one. */
export function imageReferenceProblem(ref: string): string | undefined {
  const m = REFERENCE.exec(ref);
  if (!m) return 'is not an image reference';
  const name = m[1]!;
  if (name.length > 255) return 'has a repository name longer than 255 characters';
  const digest = m[3];
  if (digest) {
    const [algorithm, hex] = digest.split(':') as [string, string];
    const length = DIGEST_LENGTHS[algorithm];
    if (length === undefined) return `has a digest of an unknown algorithm (${algorithm})`;
    if (hex.length !== length || !/^[0-9a-f]+$/.test(hex))
      return `has a ${algorithm} digest that is not ${length} lowercase hex digits`;
  }
  return undefined;
}

export function checkImageInput(ref: string, inputName: string): void {
  const problem = imageReferenceProblem(ref);
  if (problem)
    throw new InputError(inputName, `has ${JSON.stringify(ref)}, which ${problem}`, IMAGE_REFERENCE_FORM);
}

interface Container {
  name?: string;
  image?: unknown;
}

function annotationBytes(metadata: { annotations?: unknown } | undefined): number {
  const annotations = metadata?.annotations;
  if (!annotations || typeof annotations !== 'object') return 0;
  let total = 0;
  for (const [k, v] of Object.entries(annotations as Record<string, unknown>))
    total += Buffer.byteLength(k) + Buffer.byteLength(typeof v === 'string' ? v : JSON.stringify(v ?? ''));
  return total;
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const kib = (bytes: number) => `${Math.ceil(bytes / 1024)} KiB`;

/**
 * What the API server (or common sense) would refuse, checked before anything is applied: replica
 * counts, container image references, object size and annotation size.
 */
export function checkObjectLimits(objects: SourcedObject[]): void {
  for (const { object, source } of objects) {
    const what = `${source}: ${object.kind}/${object.metadata.name}`;
    const spec = object.spec as { replicas?: unknown } | undefined;
    if (
      spec?.replicas !== undefined &&
      ['Deployment', 'StatefulSet', 'ReplicaSet', 'ReplicationController'].includes(object.kind) &&
      !validReplicas(spec.replicas)
    ) {
      throw new PipelineError(
        `${what} has spec.replicas ${JSON.stringify(spec.replicas)}; accepted: a whole number from 0 to ${MAX_REPLICAS}`,
      );
    }
    for (const { spec: pod, metadata } of podTemplates(object)) {
      for (const c of [
        ...((pod.initContainers as Container[] | undefined) ?? []),
        ...((pod.containers as Container[] | undefined) ?? []),
      ]) {
        const problem =
          typeof c.image === 'string' ? imageReferenceProblem(c.image) : 'is not a string image reference';
        if (problem)
          throw new PipelineError(
            `${what}: container ${JSON.stringify(c.name ?? '?')} has the image ${JSON.stringify(c.image)}, which ${problem}; accepted: ${IMAGE_REFERENCE_FORM}`,
          );
      }
      const templateAnnotations = annotationBytes(metadata);
      if (templateAnnotations > MAX_ANNOTATION_BYTES)
        throw new PipelineError(
          `${what}: the pod template's annotations take ${kib(templateAnnotations)}; the API server refuses more than ${kib(MAX_ANNOTATION_BYTES)}`,
        );
    }
    const annotations = annotationBytes(object.metadata);
    if (annotations > MAX_ANNOTATION_BYTES)
      throw new PipelineError(
        `${what}: its annotations take ${kib(annotations)}; the API server refuses more than ${kib(MAX_ANNOTATION_BYTES)} in all`,
      );
    const size = Buffer.byteLength(JSON.stringify(object));
    if (size > MAX_OBJECT_BYTES)
      throw new PipelineError(
        `${what} is ${mib(size)}; the API server refuses objects over ${mib(MAX_OBJECT_BYTES)} (keep large data out of ConfigMaps and Secrets)`,
      );
  }
}
