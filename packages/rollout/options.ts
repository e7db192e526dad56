import { isLabelKey } from '../config/kube-names.ts';
import { InputError } from '../core/index.ts';

/**
 * The facts of the canary and blue-green strategies that their actions check too: modes, routers,
 * name rules, annotation keys and the required-input checks. It imports nothing heavy, so an
 * action reads it before it loads an engine, and states none of it again.
 */

/** On every object a strategy creates: which action made it (only those are deleted by it). */
export const CREATED_BY = 'pipeline.dev/created-by';
/** On the canary Deployment: the stable Deployment it runs beside. */
export const CANARY_OF = 'pipeline.dev/canary-of';
export const DEFAULT_TRACK_LABEL = 'pipeline.dev/track';
export const DEFAULT_COLOR_LABEL = 'color';

/** Where a canary's state lives: annotations on the stable Deployment, read by every later run. */
export const CANARY_ANNOTATIONS = {
  phase: 'pipeline.dev/canary-phase',
  image: 'pipeline.dev/canary-image',
  weight: 'pipeline.dev/canary-weight',
  stableReplicas: 'pipeline.dev/canary-stable-replicas',
  stableImage: 'pipeline.dev/canary-stable-image',
  router: 'pipeline.dev/canary-router',
  reason: 'pipeline.dev/canary-reason',
  steps: 'pipeline.dev/canary-steps',
} as const;

/** Where a blue-green release's state lives: annotations on the live Service. */
export const BG_ANNOTATIONS = {
  phase: 'pipeline.dev/bg-phase',
  image: 'pipeline.dev/bg-image',
  target: 'pipeline.dev/bg-target-color',
  previous: 'pipeline.dev/bg-previous-color',
  reason: 'pipeline.dev/bg-reason',
} as const;
/** On a colour's Deployment: when it may be scaled to zero (an ISO time). */
export const SCALE_DOWN_AT = 'pipeline.dev/scale-down-at';

export const CANARY_MODES = ['run', 'set-weight', 'promote', 'abort'] as const;
export type CanaryMode = (typeof CANARY_MODES)[number];
export const ROUTERS = ['replicas', 'gateway-api', 'nginx'] as const;
export type RouterKind = (typeof ROUTERS)[number];
export const BG_MODES = ['deploy', 'switch', 'rollback', 'finish'] as const;
export type BlueGreenMode = (typeof BG_MODES)[number];
export const COLORS = ['blue', 'green'] as const;
export type Color = (typeof COLORS)[number];
export const ABORT_ACTIONS = ['scale-to-zero', 'delete'] as const;
export type AbortAction = (typeof ABORT_ACTIONS)[number];
export const DEFAULT_ABORT_ACTION: AbortAction = 'scale-to-zero';

/** set-weight's weight: a share of traffic (or of pods, with the replicas router). */
export const WEIGHT_INPUT = { min: 0, max: 100, accepted: 'a whole number from 0 to 100' } as const;
export function checkWeight(mode: CanaryMode, weight: number | undefined): void {
  if (weight === undefined) return;
  if (mode !== 'set-weight')
    throw new InputError('weight', `is set with mode ${mode}`, 'weight only with mode: set-weight');
  if (!Number.isInteger(weight) || weight < WEIGHT_INPUT.min || weight > WEIGHT_INPUT.max)
    throw new InputError('weight', `has ${weight}`, WEIGHT_INPUT.accepted);
}

/** `/metrics` or `:9090/metrics`: the port (optional) and path of the pods' Prometheus endpoint. */
export const METRICS_PATH_INPUT = {
  pattern: /^(?::([\w-]+))?(\/\S*)$/,
  accepted: 'a path such as /metrics, optionally after a port: :9090/metrics',
} as const;

/** Names derived from the input's: the canary's Deployment and Service, the preview Service. */
export const CANARY_SUFFIX = '-canary';
export const PREVIEW_SUFFIX = '-preview';
export const canaryNameOf = (deployment: string) => `${deployment}${CANARY_SUFFIX}`;
export const previewNameOf = (app: string) => `${app}${PREVIEW_SUFFIX}`;
export const colorDeploymentOf = (app: string, color: Color) => `${app}-${color}`;

/** The track and colour label inputs: a label key by Kubernetes' rule (config/kube-names.ts). */
export function labelKeyInput(example: string): {
  accepted: string;
  check: (value: string, name: string) => void;
} {
  const accepted = `a label key such as ${example}`;
  return {
    accepted,
    check(value, name) {
      if (!isLabelKey(value))
        throw new InputError(name, `has ${JSON.stringify(value)}, which is not a label key`, accepted);
    },
  };
}

/** What an image input may look like before the image rules (kube/image-reference.ts) read it. */
export const IMAGE_INPUT = {
  pattern: /^[^\s=]+$/,
  accepted: 'an image reference such as ghcr.io/acme/shop:1.4.2 or ghcr.io/acme/shop@sha256:…',
} as const;

/** The one wording of a missing image, wherever it is found missing. */
export function imageRequired(when: string): InputError {
  return new InputError('image', `is required ${when}`, IMAGE_INPUT.accepted);
}

/** Blue-green's deploy mode brings up a new colour: it needs the image. */
export function checkBlueGreenImage(mode: BlueGreenMode, image: string | undefined): void {
  if (mode === 'deploy' && !image) throw imageRequired('with mode deploy');
}

/** A canary's steps are decided by the analysis: run and set-weight need checks. */
export const canaryAnalyses = (mode: CanaryMode) => mode === 'run' || mode === 'set-weight';
export function checksRequired(mode: CanaryMode): InputError {
  return new InputError(
    'checks',
    `is required with mode ${mode}: the health analysis decides every step`,
    'a YAML list of health-gate checks against the canary, such as a service check on <deployment>-canary',
  );
}

export type RouterConfig =
  | { kind: 'replicas'; service: string }
  | { kind: 'gateway-api'; httpRoute: string; stableService: string }
  | { kind: 'nginx'; ingress: string; stableService: string };

export interface RouterInputs {
  service?: string | undefined;
  stableService?: string | undefined;
  httpRoute?: string | undefined;
  ingress?: string | undefined;
}

/** Which inputs go with which router; each named object defaults to the Deployment's name. */
export function routerConfig(kind: RouterKind, deployment: string, inputs: RouterInputs): RouterConfig {
  if (kind === 'replicas' && (inputs.httpRoute || inputs.ingress || inputs.stableService))
    throw new InputError(
      inputs.httpRoute ? 'http-route' : inputs.ingress ? 'ingress' : 'stable-service',
      'is set with router replicas',
      'http-route with router gateway-api, ingress with router nginx',
    );
  if (kind === 'gateway-api' && inputs.ingress)
    throw new InputError('ingress', 'is set with router gateway-api', 'http-route with router gateway-api');
  if (kind === 'nginx' && inputs.httpRoute)
    throw new InputError('http-route', 'is set with router nginx', 'ingress with router nginx');
  if (kind !== 'replicas' && inputs.service)
    throw new InputError('service', `is set with router ${kind}`, 'stable-service (and canary-service)');
  const stableService = inputs.stableService ?? deployment;
  if (kind === 'replicas') return { kind, service: inputs.service ?? deployment };
  if (kind === 'gateway-api') return { kind, httpRoute: inputs.httpRoute ?? deployment, stableService };
  return { kind, ingress: inputs.ingress ?? deployment, stableService };
}

/**
 * The Service a router sends stable traffic through, and the input that names it. With replicas
 * the one Service selects canary pods too (traffic follows pod counts); the other routers weigh
 * traffic between a stable-only Service and the canary's.
 */
export function referenceServiceOf(config: RouterConfig): {
  name: string;
  input: 'service' | 'stable-service';
  sharedWithCanary: boolean;
} {
  return config.kind === 'replicas'
    ? { name: config.service, input: 'service', sharedWithCanary: true }
    : { name: config.stableService, input: 'stable-service', sharedWithCanary: false };
}

/** kustomize or manifests, and only with the modes that start something new. */
export function checkRenderingInputs(
  source: { kustomize?: string | undefined; manifests?: string[] | undefined },
  mode: string,
  startingModes: readonly string[],
  what: string,
): boolean {
  const rendering = Boolean(source.kustomize || source.manifests?.length);
  if (source.kustomize && source.manifests?.length)
    throw new InputError('manifests', 'is set together with kustomize', 'either kustomize or manifests');
  if (rendering && !startingModes.includes(mode))
    throw new InputError(
      source.kustomize ? 'kustomize' : 'manifests',
      `is set with mode ${mode}, which ${what}`,
      `kustomize or manifests with mode ${startingModes.join(' or ')}`,
    );
  return rendering;
}
