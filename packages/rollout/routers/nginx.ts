import { PipelineError } from '../../core/index.ts';
import { LABEL_MANAGED_BY } from '../../kube/apply.ts';
import { deleteIfExists, scaleDeployment, updateObject } from '../../kube/objects.ts';
import type { KubeObject } from '../../kube/resources.ts';
import { CREATED_BY } from '../options.ts';
import { mustRouteToStable, type Router, type RouterContext, sizedShift } from './router.ts';

const INGRESS = '/apis/networking.k8s.io/v1';
const NGINX_CANARY = 'nginx.ingress.kubernetes.io/canary';
const NGINX_CANARY_WEIGHT = 'nginx.ingress.kubernetes.io/canary-weight';

interface IngressBackend {
  service?: { name: string; port?: unknown };
  [key: string]: unknown;
}
interface Ingress extends KubeObject {
  spec?: {
    defaultBackend?: IngressBackend;
    rules?: { host?: string; http?: { paths?: { backend: IngressBackend; [key: string]: unknown }[] } }[];
    [key: string]: unknown;
  };
}

/**
 * ingress-nginx's canary Ingress: a copy of the stable Ingress whose backends name the canary
 * Service, with the canary annotations carrying the weight.
 */
export function nginxRouter(ctx: RouterContext, cfg: { ingress: string; stableService: string }): Router {
  const { client, namespace, canaryServiceName, track } = ctx;
  const ingressPath = (name: string) =>
    `${INGRESS}/namespaces/${encodeURIComponent(namespace)}/ingresses/${encodeURIComponent(name)}`;
  const canaryIngress = `${cfg.ingress}-canary`;
  const refersToStable = (b: IngressBackend | undefined) => b?.service?.name === cfg.stableService;

  const canaryIngressBody = (stableIngress: Ingress, weight: number) => {
    const spec = structuredClone(stableIngress.spec ?? {});
    const swap = (b: IngressBackend | undefined) => {
      if (b?.service && refersToStable(b)) b.service.name = canaryServiceName;
    };
    swap(spec.defaultBackend);
    for (const rule of spec.rules ?? []) for (const p of rule.http?.paths ?? []) swap(p.backend);
    const annotations = Object.fromEntries(
      Object.entries(stableIngress.metadata.annotations ?? {}).filter(
        ([k]) =>
          !k.startsWith('nginx.ingress.kubernetes.io/canary') && !k.startsWith('kubectl.kubernetes.io/'),
      ),
    );
    return {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: {
        name: canaryIngress,
        namespace,
        labels: { [LABEL_MANAGED_BY]: 'pipeline', [track]: 'canary' },
        annotations: {
          ...annotations,
          [CREATED_BY]: 'canary-shift',
          [NGINX_CANARY]: 'true',
          [NGINX_CANARY_WEIGHT]: String(weight),
        },
      },
      spec,
    };
  };
  const writeWeight = async (weight: number): Promise<void> => {
    const stableIngress = await client.getJson<Ingress>(ingressPath(cfg.ingress));
    if (!stableIngress) throw new PipelineError(`Ingress ${cfg.ingress} disappeared`);
    const body = canaryIngressBody(stableIngress, weight);
    // A conflicting write reads the canary Ingress again; a missing one is created.
    const updated = await updateObject<Ingress>(client, ingressPath(canaryIngress), (existing) =>
      existing
        ? { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata.resourceVersion } }
        : undefined,
    );
    if (!updated)
      await client.json('POST', `${INGRESS}/namespaces/${encodeURIComponent(namespace)}/ingresses`, { body });
  };
  return {
    kind: 'nginx',
    validate: () =>
      mustRouteToStable<Ingress>(ctx, {
        input: 'ingress',
        kind: 'Ingress',
        name: cfg.ingress,
        stableService: cfg.stableService,
        path: ingressPath(cfg.ingress),
        existing: 'an existing networking.k8s.io/v1 Ingress served by ingress-nginx',
        routesToStable: (ing) =>
          refersToStable(ing.spec?.defaultBackend) ||
          (ing.spec?.rules ?? []).some((r) => (r.http?.paths ?? []).some((p) => refersToStable(p.backend))),
        routing: 'an Ingress whose backends name the stable Service',
      }),
    setWeight: (weight) => sizedShift(ctx, weight, writeWeight),
    async toStable() {
      if (await client.getJson(ingressPath(canaryIngress))) await writeWeight(0);
      await scaleDeployment(client, namespace, ctx.canaryName, 0);
    },
    async cleanup() {
      await deleteIfExists(client, ingressPath(canaryIngress));
    },
  };
}
