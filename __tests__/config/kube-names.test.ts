import { describe, expect, test } from '@jest/globals';
import { isLabelKey, KUBE_NAME } from '../../packages/config/kube-names.ts';

describe("Kubernetes' name rules", () => {
  test.each(['shop', 'shop-canary', '0', 'a1-b2'])('%j is a name', (name) => {
    expect(KUBE_NAME.test(name)).toBe(true);
  });

  test.each(['Shop', '-shop', 'shop-', 'shop.v2', 'shop_v2', ''])('%j is not a name', (name) => {
    expect(KUBE_NAME.test(name)).toBe(false);
  });

  test.each(['color', 'pipeline.dev/track', 'app.kubernetes.io/name', 'Track_1', `${'a'.repeat(253)}/x`])(
    '%j is a label key',
    (key) => {
      expect(isLabelKey(key)).toBe(true);
    },
  );

  test.each([
    '',
    '/track',
    'pipeline.dev/',
    'Pipeline.dev/track',
    '-track',
    'track-',
    'a/b/c',
    `${'a'.repeat(64)}`,
    `${'a'.repeat(254)}/x`,
  ])('%j is not a label key', (key) => {
    expect(isLabelKey(key)).toBe(false);
  });
});
