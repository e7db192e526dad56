import { describe, expect, test } from '@jest/globals';
import { imageReferenceProblem } from '../../packages/kube/image-reference.ts';

const SHA256 = 'a'.repeat(64);

describe('image references by the OCI distribution grammar', () => {
  test.each([
    'nginx',
    'nginx:1.27',
    'library/nginx',
    'ghcr.io/acme/shop:v2',
    'registry.local:5000/team/app_x/web-1.2:tag.with-dots_and_underscores',
    `ghcr.io/acme/shop@sha256:${SHA256}`,
    `ghcr.io/acme/shop:1.4.2@sha256:${SHA256}`,
    `ghcr.io/acme/shop@sha512:${'0'.repeat(128)}`,
    '[::1]:5000/app:1',
    'a__b/c---d',
  ])('accepts %s', (ref) => {
    expect(imageReferenceProblem(ref)).toBeUndefined();
  });

  test.each([
    ['ghcr.io/acme/shop:v2;id', 'is not an image reference'],
    ['ghcr.io/acme/shop:v2 id', 'is not an image reference'],
    ['ghcr.io/acme/shop:$(id)', 'is not an image reference'],
    ['GHCR.io/Acme/Shop:v1', 'is not an image reference'],
    ['shop:', 'is not an image reference'],
    [`shop:${'t'.repeat(129)}`, 'is not an image reference'],
    ['shop:-v1', 'is not an image reference'],
    ['', 'is not an image reference'],
    ['ghcr.io/acme/shop@sha256:abc', 'is not an image reference'],
    [`ghcr.io/acme/shop@sha256:${'a'.repeat(40)}`, 'has a sha256 digest that is not 64 lowercase hex digits'],
    [`ghcr.io/acme/shop@sha256:${'A'.repeat(64)}`, 'has a sha256 digest that is not 64 lowercase hex digits'],
    [`ghcr.io/acme/shop@md5:${'a'.repeat(32)}`, 'has a digest of an unknown algorithm (md5)'],
    [`${'a/'.repeat(128)}x`, 'has a repository name longer than 255 characters'],
  ])('refuses %j: %s', (ref, problem) => {
    expect(imageReferenceProblem(ref)).toBe(problem);
  });
});
