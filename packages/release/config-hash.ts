import { createHash } from 'node:crypto';

/**
 * The configuration a release runs, as one hash: the rendered objects with container images left
 * out (the image is recorded on its own), in a stable order. A rollback compares it with what the
 * known-good deployment recorded, so "the same configuration" is checked, not assumed. Secret
 * values never enter it (a digest of a secret is derived from it): a Secret counts by its name and
 * keys, and generated Secret names carry their content hash already.
 */
export function configHash(objects: readonly Record<string, unknown>[]): string {
  const canonical = objects
    .map((o) => stable(withoutImagesAndSecretValues(o)))
    .sort()
    .join('\n');
  return `sha256:${createHash('sha256').update(canonical).digest('hex')}`;
}

function withoutImagesAndSecretValues(object: Record<string, unknown>): unknown {
  const copy = structuredClone(object) as Record<string, unknown>;
  if (copy.kind === 'Secret') {
    for (const field of ['data', 'stringData'])
      if (copy[field] && typeof copy[field] === 'object')
        copy[field] = Object.keys(copy[field] as object).sort();
  }
  const strip = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(strip);
    else if (node && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if ((key === 'containers' || key === 'initContainers') && Array.isArray(value))
          for (const c of value) if (c && typeof c === 'object') delete (c as { image?: unknown }).image;
        strip(value);
      }
    }
  };
  strip(copy);
  return copy;
}

function stable(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stable).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}
