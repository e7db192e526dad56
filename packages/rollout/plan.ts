import type { Logger } from '../core/index.ts';
import { LABEL_APP, LABEL_ENVIRONMENT, LABEL_MANAGED_BY, PRUNABLE, resolveObjects } from '../kube/apply.ts';
import { KubeApiError, type KubeClient } from '../kube/client.ts';
import { configReferences, podTemplates, type SourcedObject } from '../kube/manifests.ts';
import { type FieldChange, normaliseSecret, readOnlyDiff } from '../kube/read-only-diff.ts';
import { collectionPath, type KubeObject, objectPath, ResourceCatalog } from '../kube/resources.ts';
import { type DeployOptions, prepareObjects } from './deploy.ts';
import { GENERATED_SUFFIX } from './generations.ts';
import { hashTemplate, TEMPLATE_HASH_ANNOTATION } from './rendered.ts';

/**
 * What a deploy would change in an environment, found with GET and LIST only, so it runs with a
 * read-only Role before anyone approves: the rendered objects (image set, checksums stamped, labels
 * added, exactly as the deploy prepares them) against the live ones.
 */

/**
 * The checksum annotations deploy-env stamps on pod templates. Their values are never shown: the
 * Secret one is keyed by a key the plan cannot read, and a reviewer needs the consequence in words.
 */
const CHECKSUM_FIELD = /(^|\.)annotations\.pipeline\.dev\/(config|secret)-checksum$/;
const CONFIG_CHECKSUM_FIELD = /(^|\.)annotations\.pipeline\.dev\/config-checksum$/;
export const RESTART_CONFIG = 'pods restart: configuration changed';
export const RESTART_SECRET = 'pods restart: a referenced Secret changed';
export const RESTART_SECRET_UNKNOWN =
  'pods restart if a referenced Secret changed (Secrets are not readable here)';

/** `unreadable`: the plan's Role may not read it (often Secrets, on purpose), so its change is unknown. */
export type ObjectChangeKind = 'added' | 'changed' | 'unchanged' | 'removed' | 'unreadable';

export interface ObjectPlan {
  kind: string;
  name: string;
  change: ObjectChangeKind;
  fields: FieldChange[];
  /** The changes a reviewer must not miss, in words: replicas, images, resources, configuration. */
  callouts: string[];
  /** For a content-addressed ConfigMap or Secret: the live generation it takes over from. */
  replaces?: string;
  source: string;
}

export interface ManifestPlan {
  namespace: string;
  namespaceExists: boolean;
  objects: ObjectPlan[];
  counts: Record<ObjectChangeKind, number>;
}

export type PlanOptions = Pick<
  DeployOptions,
  | 'client'
  | 'app'
  | 'environment'
  | 'namespace'
  | 'objects'
  | 'images'
  | 'replicas'
  | 'config'
  | 'secrets'
  | 'prepared'
> & { logger: Logger; client: KubeClient };

const show = (v: string | undefined) => (v === undefined ? 'none' : v.replace(/^"(.*)"$/, '$1'));
/** An image by digest cut to 12 hex digits for a call-out; the field diff keeps the whole reference. */
const shortImage = (v: string | undefined) =>
  show(v).replace(/@sha256:([0-9a-f]{12})[0-9a-f]{52}\b/, '@sha256:$1…');

function callouts(kind: string, fields: FieldChange[]): string[] {
  const out: string[] = [];
  const envName = (path: string, side: 'before' | 'after') =>
    show(fields.find((f) => f.path === path.replace(/\.value$/, '.name'))?.[side]);
  for (const f of fields) {
    const p = f.path;
    if (/^spec\.replicas$/.test(p)) out.push(`replicas ${show(f.before)} → ${show(f.after)}`);
    else if (/containers\.\d+\.image$/.test(p))
      out.push(`image ${shortImage(f.before)} → ${shortImage(f.after)}`);
    else if (/containers\.\d+\.resources\./.test(p))
      out.push(`${p.replace(/^.*resources\./, 'resources ')} ${show(f.before)} → ${show(f.after)}`);
    else if (/containers\.\d+\.env\.\d+\.name$/.test(p) && (f.before === undefined || f.after === undefined))
      out.push(f.after === undefined ? `env ${show(f.before)} removed` : `env ${show(f.after)} added`);
    else if (/containers\.\d+\.env\.\d+\.value$/.test(p) && f.before !== undefined && f.after !== undefined)
      out.push(
        `env ${envName(p, 'after') === 'none' ? p.replace(/^.*env\./, '#') : envName(p, 'after')}: ${show(f.before)} → ${show(f.after)}`,
      );
    else if (kind === 'ConfigMap' && /^data\./.test(p))
      out.push(`${p.slice(5)}: ${show(f.before)} → ${show(f.after)}`);
    else if (kind === 'Secret' && /^data\./.test(p))
      out.push(
        `${p.slice(5)} ${f.before === undefined ? 'added' : f.after === undefined ? 'removed' : 'changes'} (value not shown)`,
      );
  }
  return out;
}

const FORBIDDEN = Symbol('forbidden');

/** A read the plan's Role may not make is a fact to show, not a failure of the plan. */
async function readable<T>(read: () => Promise<T>): Promise<T | typeof FORBIDDEN> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof KubeApiError && error.status === 403) return FORBIDDEN;
    throw error;
  }
}

/**
 * canary-shift and blue-green-switch stamp the rendered template's hash on the Deployment they
 * promote: when the live one carries it, the release stamps the new hash, which is no removal.
 */
function stampTemplateHash(desired: KubeObject, live: KubeObject | undefined): void {
  type WithTemplate = { spec?: { template?: { metadata?: { annotations?: Record<string, string> } } } };
  const liveTemplate = (live as WithTemplate | undefined)?.spec?.template;
  const template = (desired as WithTemplate).spec?.template;
  if (
    desired.kind !== 'Deployment' ||
    !template ||
    !liveTemplate?.metadata?.annotations?.[TEMPLATE_HASH_ANNOTATION]
  )
    return;
  const hash = hashTemplate(template);
  template.metadata = {
    ...template.metadata,
    annotations: { ...template.metadata?.annotations, [TEMPLATE_HASH_ANNOTATION]: hash },
  };
}

function configData(obj: KubeObject): Map<string, string> {
  const out = new Map<string, string>();
  const normalised = normaliseSecret(obj) as KubeObject & Record<string, unknown>;
  for (const section of ['data', 'binaryData'])
    for (const [k, v] of Object.entries((normalised[section] as Record<string, unknown>) ?? {}))
      out.set(`${section}.${k}`, JSON.stringify(v));
  return out;
}

/** Two generations of a ConfigMap or Secret, key by key; a Secret's values are never shown. */
function configDiff(before: KubeObject, after: KubeObject): FieldChange[] {
  const a = configData(before);
  const b = configData(after);
  const hide = (v: string | undefined) =>
    v === undefined ? undefined : after.kind === 'Secret' ? '(secret value)' : v;
  const out: FieldChange[] = [];
  for (const key of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    if (a.get(key) === b.get(key)) continue;
    const before = hide(a.get(key));
    const afterValue = hide(b.get(key));
    out.push({
      path: key,
      ...(before !== undefined ? { before } : {}),
      ...(afterValue !== undefined ? { after: afterValue } : {}),
    });
  }
  return out;
}

/**
 * A blue-green release does not change the rendered Deployment and Service as they are: the new
 * template goes to the idle colour, the Service's selector switches to it once it is ready and its
 * checks pass, and the colour that served keeps running for a switch back until the release is final.
 */
function describeBlueGreen(
  plans: ObjectPlan[],
  bg: { app: string; live: string; idle: string; liveReplicas: number | undefined; plan: ObjectPlan },
): void {
  const idleName = `${bg.app}-${bg.idle}`;
  const liveName = `${bg.app}-${bg.live}`;
  bg.plan.name = idleName;
  const service = plans.find((p) => p.kind === 'Service' && p.name === bg.app);
  // The rendered Service selects every pod of the app; the live one keeps the colour in its selector.
  if (service) {
    service.fields = service.fields.filter((f) => f.path !== 'spec.selector.color');
    if (service.change === 'changed' && service.fields.length === 0) service.change = 'unchanged';
  }
  if (bg.plan.change === 'unchanged') {
    bg.plan.callouts.unshift(`the same template as the live ${bg.live}: no new colour, no switch`);
    return;
  }
  bg.plan.callouts.unshift(
    `the idle colour ${bg.idle} gets the new template (compared with the live ${liveName})`,
  );
  const switchPlan: ObjectPlan = service ?? {
    kind: 'Service',
    name: bg.app,
    change: 'changed',
    fields: [],
    callouts: [],
    source: 'live (the Service blue-green-switch switches)',
  };
  if (!service) plans.push(switchPlan);
  switchPlan.change = 'changed';
  switchPlan.fields.push({
    path: 'spec.selector.color',
    before: JSON.stringify(bg.live),
    after: JSON.stringify(bg.idle),
  });
  switchPlan.callouts.push(
    `selector color ${bg.live} → ${bg.idle}: the switch, once ${idleName} is ready and its checks pass`,
  );
  const replicas = bg.liveReplicas === undefined ? undefined : String(bg.liveReplicas);
  plans.push({
    kind: 'Deployment',
    name: liveName,
    change: 'changed',
    fields: [{ path: 'spec.replicas', ...(replicas ? { before: replicas } : {}), after: '0' }],
    callouts: [
      `the live colour: serves until the switch, then stays up for a switch back until the soak ends and the release is final, then scaled to 0${replicas ? ` (from ${replicas})` : ''}`,
    ],
    source: 'live (the colour blue-green-switch retires)',
  });
}

export async function planManifests(options: PlanOptions): Promise<ManifestPlan> {
  const { client, namespace } = options;
  const { objects } = options.prepared ?? prepareObjects({ ...options, images: options.images ?? new Map() });
  const catalog = new ResourceCatalog(client);
  const resolved = await resolveObjects(objects as SourcedObject[], catalog, namespace);
  // A namespaced Role cannot read the Namespace object itself: then the objects' reads tell.
  const namespaceExists = await readable(() =>
    client.getJson(`/api/v1/namespaces/${encodeURIComponent(namespace)}`),
  ).then((r) => r === FORBIDDEN || Boolean(r));
  const plans: ObjectPlan[] = [];
  const liveByKind = new Map<string, KubeObject[]>();
  const listKind = async (apiVersion: string, kind: string, selector?: string): Promise<KubeObject[]> => {
    const key = `${apiVersion}/${kind}/${selector ?? ''}`;
    if (liveByKind.has(key)) return liveByKind.get(key)!;
    const type = await catalog.lookup(apiVersion, kind);
    const found =
      type?.verbs.includes('list') && namespaceExists
        ? await readable(() =>
            client.getJson<{ items?: KubeObject[] }>(
              `${collectionPath(type, namespace)}${selector ? `?labelSelector=${encodeURIComponent(selector)}` : ''}`,
            ),
          )
        : undefined;
    const list = found === FORBIDDEN ? undefined : found;
    liveByKind.set(key, list?.items ?? []);
    return list?.items ?? [];
  };

  const colours = new Set<string>();
  /** What blue-green-switch will do with the rendered Deployment when a Service selects a live colour. */
  let blueGreen:
    | { app: string; live: string; idle: string; liveReplicas: number | undefined; plan?: ObjectPlan }
    | undefined;
  const renderedSecrets = new Set(
    resolved.filter((o) => o.object.kind === 'Secret').map((o) => `Secret/${o.object.metadata.name}`),
  );
  // Workloads whose pods a configuration change restarts, settled once every Secret's plan is known.
  const restarts: { plan: ObjectPlan; secrets: string[]; configChanged: boolean }[] = [];

  for (const { object, type, namespace: ns, source } of resolved) {
    const name = object.metadata.name!;
    const read =
      namespaceExists || !type.namespaced
        ? await readable(() => client.getJson<KubeObject>(objectPath(type, ns, name)))
        : undefined;
    if (read === FORBIDDEN) {
      plans.push({
        kind: object.kind,
        name,
        change: 'unreadable',
        fields: [],
        callouts: ['the plan may not read it'],
        source,
      });
      continue;
    }
    let live = read;
    let replaces: string | undefined;
    let colour = false;
    if (!live && object.kind === 'Deployment') {
      // blue-green-switch runs the rendered Deployment as <name>-blue / <name>-green; the release
      // goes to the idle colour, so the change is what it runs against what the live colour runs.
      const running = await liveColourOf(client, namespace, name);
      if (running) {
        live = running;
        replaces = running.metadata.name;
        colour = true;
        const liveColourName = running.metadata.name!.endsWith('-blue') ? 'blue' : 'green';
        blueGreen = {
          app: name,
          live: liveColourName,
          idle: liveColourName === 'blue' ? 'green' : 'blue',
          liveReplicas: (running.spec as { replicas?: number } | undefined)?.replicas,
        };
        colours.add(`Deployment/${running.metadata.name}`);
        colours.add(`Deployment/${name}-${running.metadata.name!.endsWith('-blue') ? 'green' : 'blue'}`);
      }
    }
    stampTemplateHash(object, live);
    let fields = readOnlyDiff(live, object);
    if (colour)
      // The colour's own name, labels and selector are the strategy's, not a change of the release.
      fields = fields.filter(
        (f) =>
          !/^metadata\./.test(f.path) && !/(^|\.)color$/.test(f.path) && !/^spec\.selector\./.test(f.path),
      );
    if (!live && (object.kind === 'ConfigMap' || object.kind === 'Secret') && GENERATED_SUFFIX.test(name)) {
      // A new generation of generated configuration: what matters is how it differs from the live one.
      const base = name.replace(GENERATED_SUFFIX, '');
      const previous = (await listKind(object.apiVersion, object.kind))
        .filter((o) => o.metadata.name !== name && o.metadata.name?.replace(GENERATED_SUFFIX, '') === base)
        .sort((a, b) =>
          String(b.metadata.creationTimestamp).localeCompare(String(a.metadata.creationTimestamp)),
        )[0];
      if (previous) {
        replaces = previous.metadata.name;
        fields = configDiff(previous, object);
      }
    }
    const configChanged = fields.some((f) => CONFIG_CHECKSUM_FIELD.test(f.path));
    fields = fields.filter((f) => !CHECKSUM_FIELD.test(f.path));
    const change: ObjectChangeKind = !live ? 'added' : fields.length > 0 ? 'changed' : 'unchanged';
    const plan: ObjectPlan = {
      kind: object.kind,
      name,
      change,
      fields,
      callouts: change === 'added' && !replaces ? [] : callouts(object.kind, fields),
      ...(replaces ? { replaces } : {}),
      source,
    };
    plans.push(plan);
    if (colour && blueGreen) blueGreen.plan = plan;
    if (live) {
      const used = new Set(podTemplates(object).flatMap(({ spec }) => [...configReferences(spec)]));
      const secrets = [...used].filter((r) => renderedSecrets.has(r));
      if (configChanged || secrets.length > 0) restarts.push({ plan, secrets, configChanged });
    }
  }
  settleRestarts(plans, restarts);

  if (blueGreen?.plan) describeBlueGreen(plans, { ...blueGreen, plan: blueGreen.plan });

  await planRemovals(plans, resolved, colours, options, listKind);
  markFirstReleaseSecrets(plans);
  const counts = { added: 0, changed: 0, unchanged: 0, removed: 0, unreadable: 0 };
  for (const p of plans) counts[p.change]++;
  options.logger.info(
    `Plan for ${namespace}: ${counts.changed} changed, ${counts.added} added, ${counts.removed} no longer in the manifests, ${counts.unchanged} unchanged${counts.unreadable ? `, ${counts.unreadable} not readable` : ''}`,
  );
  return { namespace, namespaceExists, objects: plans, counts };
}

/** The live colour's Deployment when the Service named like the rendered Deployment selects a colour. */
async function liveColourOf(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<KubeObject | undefined> {
  const service = await readable(() =>
    client.getJson<KubeObject & { spec?: { selector?: Record<string, string> } }>(
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/services/${encodeURIComponent(name)}`,
    ),
  );
  const selected = service === FORBIDDEN ? undefined : service?.spec?.selector?.['color'];
  if (selected !== 'blue' && selected !== 'green') return undefined;
  const found = await readable(() =>
    client.getJson<KubeObject>(
      `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/deployments/${encodeURIComponent(`${name}-${selected}`)}`,
    ),
  );
  return found === FORBIDDEN ? undefined : found;
}

/** Workloads whose pods a configuration change restarts, once every Secret's plan is known. */
function settleRestarts(
  plans: ObjectPlan[],
  restarts: { plan: ObjectPlan; secrets: string[]; configChanged: boolean }[],
): void {
  for (const { plan, secrets, configChanged } of restarts) {
    const secretPlans = plans.filter((p) => secrets.includes(`${p.kind}/${p.name}`));
    const words = configChanged
      ? RESTART_CONFIG
      : secretPlans.some((p) => p.change === 'changed' || p.change === 'added')
        ? RESTART_SECRET
        : secretPlans.some((p) => p.change === 'unreadable')
          ? RESTART_SECRET_UNKNOWN
          : undefined;
    if (!words) continue;
    plan.callouts.push(words);
    if (words !== RESTART_SECRET_UNKNOWN && plan.change === 'unchanged') plan.change = 'changed';
  }
}

/** What the deploy applied earlier for this app and environment and the manifests no longer hold. */
async function planRemovals(
  plans: ObjectPlan[],
  resolved: { object: KubeObject }[],
  colours: Set<string>,
  options: PlanOptions,
  listKind: (apiVersion: string, kind: string, selector?: string) => Promise<KubeObject[]>,
): Promise<void> {
  const keep = new Set([...resolved.map((o) => `${o.object.kind}/${o.object.metadata.name}`), ...colours]);
  const replaced = new Set(plans.flatMap((p) => (p.replaces ? [`${p.kind}/${p.replaces}`] : [])));
  const selector = `${LABEL_MANAGED_BY}=pipeline,${LABEL_APP}=${options.app},${LABEL_ENVIRONMENT}=${options.environment}`;
  for (const { apiVersion, kind } of PRUNABLE) {
    for (const item of await listKind(apiVersion, kind, selector)) {
      const id = `${kind}/${item.metadata.name}`;
      if (keep.has(id) || item.metadata.ownerReferences?.some((r) => r.controller)) continue;
      plans.push({
        kind,
        name: item.metadata.name!,
        change: 'removed',
        fields: [],
        callouts: replaced.has(id) ? ['the previous generation of a renamed configuration'] : [],
        source: 'live (no longer in the manifests)',
      });
    }
  }
}

/**
 * Nothing of the release is live and nothing labelled for it either: a first release into an
 * empty namespace, where a Secret the plan may not read can only be new.
 */
function markFirstReleaseSecrets(plans: ObjectPlan[]): void {
  const firstRelease =
    plans.some((p) => p.change === 'added') &&
    !plans.some((p) => p.change === 'changed' || p.change === 'unchanged' || p.change === 'removed');
  if (firstRelease)
    for (const p of plans)
      if (p.change === 'unreadable' && p.kind === 'Secret') {
        p.change = 'added';
        p.callouts = ['first release into this namespace (not readable here, so values not compared)'];
      }
}
