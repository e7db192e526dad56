import { describe, expect, test } from '@jest/globals';
import {
  BG_MODES,
  CANARY_MODES,
  canaryAnalyses,
  checkRenderingInputs,
  checksRequired,
  imageRequired,
  labelKeyInput,
  routerConfig,
} from '../../packages/rollout/options.ts';

describe('the rollout options: one place for modes, routers, names and required inputs', () => {
  test('each router takes its own inputs, each defaulting to the Deployment name', () => {
    expect(routerConfig('replicas', 'shop', {})).toEqual({ kind: 'replicas', service: 'shop' });
    expect(routerConfig('gateway-api', 'shop', { stableService: 'shop-stable' })).toEqual({
      kind: 'gateway-api',
      httpRoute: 'shop',
      stableService: 'shop-stable',
    });
    expect(routerConfig('nginx', 'shop', { ingress: 'web' })).toEqual({
      kind: 'nginx',
      ingress: 'web',
      stableService: 'shop',
    });
  });

  test("another router's input is refused, naming the input and what goes with which router", () => {
    expect(() => routerConfig('replicas', 'shop', { httpRoute: 'r' })).toThrow(
      "Input 'http-route' is set with router replicas. Accepted: http-route with router gateway-api, ingress with router nginx.",
    );
    expect(() => routerConfig('gateway-api', 'shop', { ingress: 'i' })).toThrow(/Input 'ingress' is set/);
    expect(() => routerConfig('nginx', 'shop', { httpRoute: 'r' })).toThrow(/Input 'http-route' is set/);
    expect(() => routerConfig('nginx', 'shop', { service: 's' })).toThrow(
      "Input 'service' is set with router nginx. Accepted: stable-service (and canary-service).",
    );
  });

  test('kustomize or manifests, never both, and only with the modes that start something', () => {
    expect(checkRenderingInputs({}, 'promote', ['run'], 'starts nothing new')).toBe(false);
    expect(checkRenderingInputs({ kustomize: 'k8s/prod' }, 'run', ['run'], 'x')).toBe(true);
    expect(() => checkRenderingInputs({ kustomize: 'k', manifests: ['m'] }, 'run', ['run'], 'x')).toThrow(
      "Input 'manifests' is set together with kustomize",
    );
    expect(() =>
      checkRenderingInputs(
        { manifests: ['m.yaml'] },
        'abort',
        CANARY_MODES.filter(canaryAnalyses),
        'starts nothing new',
      ),
    ).toThrow(
      "Input 'manifests' is set with mode abort, which starts nothing new. Accepted: kustomize or manifests with mode run or set-weight.",
    );
    expect(() =>
      checkRenderingInputs({ kustomize: 'k' }, 'finish', ['deploy'], 'deploys nothing new'),
    ).toThrow('Accepted: kustomize or manifests with mode deploy.');
  });

  test('a missing image and missing checks read the same wherever they are found', () => {
    expect(imageRequired('with mode deploy').message).toBe(
      "Input 'image' is required with mode deploy. Accepted: an image reference such as ghcr.io/acme/shop:1.4.2 or ghcr.io/acme/shop@sha256:….",
    );
    expect(checksRequired('set-weight').message).toMatch(
      /^Input 'checks' is required with mode set-weight: the health analysis decides every step\./,
    );
    expect(CANARY_MODES.filter(canaryAnalyses)).toEqual(['run', 'set-weight']);
    expect(BG_MODES).toEqual(['deploy', 'switch', 'rollback', 'finish']);
  });

  test('the track and colour labels are label keys by the Kubernetes rule, refused with the accepted form', () => {
    const { check } = labelKeyInput('pipeline.dev/track');
    for (const ok of ['color', 'pipeline.dev/track', 'app.kubernetes.io/version'])
      expect(() => check(ok, 'track-label')).not.toThrow();
    for (const bad of ['a b', 'Pipeline.Dev/track', '/x', 'track-'])
      expect(() => check(bad, 'track-label')).toThrow(
        `Input 'track-label' has ${JSON.stringify(bad)}, which is not a label key. Accepted: a label key such as pipeline.dev/track.`,
      );
  });
});
