import { PipelineError } from '../core/index.ts';
import { IMAGE_REFERENCE_FORM, imageReferenceProblem } from './image-reference.ts';
import { podTemplates, type SourcedObject } from './manifests.ts';

/**
 * The most replicas a deploy sets on one workload. The API takes any int32, but a typo of a few
 * digits would ask the cluster for millions of pods; 10000 is beyond any single Deployment we know.
 */
export const MAX_REPLICAS = 10_000;
/** etcd's request limit, which the API server applies to one object (ConfigMaps and Secrets say 1 MiB). */
const MAX_OBJECT_BYTES = 1024 * 1024;
/** The API server's limit on all annotations of one object together (keys and values). */
const MAX_ANNOTATION_BYTES = 256 * 1024;

/** Namespaces a deploy never changes, whatever its inputs say: the cluster's own. */
export const PROTECTED_NAMESPACES = ['kube-system', 'kube-public', 'default'];

/** Whether a replica count is an integer from 0 to MAX_REPLICAS. */
export function validReplicas(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= MAX_REPLICAS;
}

export { checkImageInput, IMAGE_REFERENCE_FORM, imageReferenceProblem } from './image-reference.ts';

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
