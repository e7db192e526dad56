import { InputError } from '../core/index.ts';

/*
 * Image references by the OCI distribution grammar, in a module of its own (no YAML, no
 * Kubernetes client) so that any action can check its image input at start-up cheaply.
 */

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
