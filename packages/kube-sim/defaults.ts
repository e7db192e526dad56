/** Defaulting and validation as the API server does them before storing. */
import { deepEqual, isObject } from './patch.ts';
import type { ResourceInfo } from './resources.ts';
import { type LabelSelectorSpec, selectorPredicate } from './selectors.ts';
import type { StatusCause } from './status.ts';
import type { JsonObject, KubeObject } from './types.ts';

function obj(parent: JsonObject, key: string): JsonObject {
  const v = parent[key];
  if (isObject(v)) return v;
  const created: JsonObject = {};
  parent[key] = created;
  return created;
}

function defaultContainer(c: JsonObject): void {
  const image = typeof c['image'] === 'string' ? c['image'] : '';
  const tag = image.includes('@') ? 'digest' : (/:([^/:]+)$/.exec(image)?.[1] ?? 'latest');
  c['imagePullPolicy'] ??= tag === 'latest' ? 'Always' : 'IfNotPresent';
  c['terminationMessagePath'] ??= '/dev/termination-log';
  c['terminationMessagePolicy'] ??= 'File';
  c['resources'] ??= {};
  if (Array.isArray(c['ports'])) for (const p of c['ports']) if (isObject(p)) p['protocol'] ??= 'TCP';
}

export function defaultPodSpec(spec: JsonObject, restartPolicy = 'Always'): void {
  spec['restartPolicy'] ??= restartPolicy;
  spec['terminationGracePeriodSeconds'] ??= 30;
  spec['dnsPolicy'] ??= 'ClusterFirst';
  spec['schedulerName'] ??= 'default-scheduler';
  spec['securityContext'] ??= {};
  for (const list of ['containers', 'initContainers']) {
    const cs = spec[list];
    if (Array.isArray(cs)) for (const c of cs) if (isObject(c)) defaultContainer(c);
  }
}

function defaultTemplate(spec: JsonObject, restartPolicy?: string): void {
  const template = obj(spec, 'template');
  defaultPodSpec(obj(template, 'spec'), restartPolicy);
}

let nextServiceIp = 1;

export function applyDefaults(r: ResourceInfo, o: KubeObject, previous?: KubeObject): void {
  const spec = isObject(o['spec']) ? o['spec'] : undefined;
  switch (r.kind) {
    case 'Deployment': {
      if (!spec) return;
      spec['replicas'] ??= 1;
      spec['revisionHistoryLimit'] ??= 10;
      spec['progressDeadlineSeconds'] ??= 600;
      const strategy = obj(spec, 'strategy');
      strategy['type'] ??= 'RollingUpdate';
      if (strategy['type'] === 'RollingUpdate') {
        const ru = obj(strategy, 'rollingUpdate');
        ru['maxSurge'] ??= '25%';
        ru['maxUnavailable'] ??= '25%';
      }
      defaultTemplate(spec);
      return;
    }
    case 'ReplicaSet':
      if (!spec) return;
      spec['replicas'] ??= 1;
      defaultTemplate(spec);
      return;
    case 'Job': {
      if (!spec) return;
      spec['parallelism'] ??= 1;
      spec['completions'] ??= 1;
      spec['backoffLimit'] ??= 6;
      spec['completionMode'] ??= 'NonIndexed';
      spec['suspend'] ??= false;
      const uid = previous?.metadata.uid ?? o.metadata.uid;
      if (uid && spec['manualSelector'] !== true) {
        const labels = { 'batch.kubernetes.io/controller-uid': uid, 'controller-uid': uid };
        spec['selector'] ??= { matchLabels: { 'batch.kubernetes.io/controller-uid': uid } };
        const meta = obj(obj(spec, 'template'), 'metadata');
        meta['labels'] = {
          ...(isObject(meta['labels']) ? meta['labels'] : {}),
          ...labels,
          'batch.kubernetes.io/job-name': o.metadata.name!,
          'job-name': o.metadata.name!,
        };
      }
      defaultTemplate(spec, 'Never');
      return;
    }
    case 'Pod':
      if (spec) defaultPodSpec(spec);
      return;
    case 'Service': {
      if (!spec) return;
      spec['type'] ??= 'ClusterIP';
      spec['sessionAffinity'] ??= 'None';
      const prevSpec = previous && isObject(previous['spec']) ? previous['spec'] : undefined;
      if (spec['clusterIP'] === undefined || spec['clusterIP'] === '') {
        spec['clusterIP'] =
          prevSpec?.['clusterIP'] ??
          `10.96.${Math.floor(nextServiceIp / 250)}.${(nextServiceIp++ % 250) + 2}`;
      }
      spec['clusterIPs'] ??= [spec['clusterIP']];
      if (Array.isArray(spec['ports'])) {
        for (const p of spec['ports']) {
          if (!isObject(p)) continue;
          p['protocol'] ??= 'TCP';
          p['targetPort'] ??= p['port'];
        }
      }
      return;
    }
    case 'Namespace': {
      const s = obj(o, 'spec');
      s['finalizers'] ??= ['kubernetes'];
      o['status'] = { phase: o.metadata.deletionTimestamp ? 'Terminating' : 'Active' };
      o.metadata.labels = { ...(o.metadata.labels ?? {}), 'kubernetes.io/metadata.name': o.metadata.name! };
      return;
    }
    case 'Secret':
      o['type'] ??= 'Opaque';
      if (isObject(o['stringData'])) {
        const data = obj(o, 'data');
        for (const [k, v] of Object.entries(o['stringData']))
          data[k] = Buffer.from(String(v)).toString('base64');
        delete o['stringData'];
      }
      return;
  }
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function goMap(labels: Record<string, string> | undefined): string {
  const entries = Object.entries(labels ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
  return `map[string]string{${entries.join(', ')}}`;
}

function required(field: string, what = ''): StatusCause {
  return { reason: 'FieldValueRequired', message: `Required value${what ? `: ${what}` : ''}`, field };
}

function invalidValue(field: string, value: string, detail: string): StatusCause {
  return { reason: 'FieldValueInvalid', message: `Invalid value: ${value}: ${detail}`, field };
}

function validateContainers(spec: JsonObject | undefined, prefix: string, causes: StatusCause[]): void {
  const containers = spec?.['containers'];
  if (!Array.isArray(containers) || containers.length === 0) {
    causes.push(required(`${prefix}.containers`));
    return;
  }
  containers.forEach((c, i) => {
    if (!isObject(c)) return;
    if (!c['name']) causes.push(required(`${prefix}.containers[${i}].name`));
    else if (!DNS1123_LABEL.test(String(c['name']))) {
      causes.push(
        invalidValue(
          `${prefix}.containers[${i}].name`,
          JSON.stringify(c['name']),
          "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        ),
      );
    }
    if (!c['image']) causes.push(required(`${prefix}.containers[${i}].image`));
  });
}

/** The causes of a 422, empty when the object is valid. */
export function validate(r: ResourceInfo, o: KubeObject, previous?: KubeObject): StatusCause[] {
  const causes: StatusCause[] = [];
  const name = o.metadata?.name;
  if (!name) causes.push(required('metadata.name', 'name or generateName is required'));
  else {
    const labelOnly = r.kind === 'Namespace' || r.kind === 'Service';
    const ok = labelOnly
      ? DNS1123_LABEL.test(name) && name.length <= 63
      : DNS1123_SUBDOMAIN.test(name) && name.length <= 253;
    if (!ok) {
      causes.push(
        invalidValue(
          'metadata.name',
          JSON.stringify(name),
          labelOnly
            ? "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            : "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
      );
    }
  }
  for (const [k, v] of Object.entries(o.metadata?.labels ?? {})) {
    if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v)) {
      causes.push(
        invalidValue(
          `metadata.labels`,
          JSON.stringify(v),
          `a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (key ${k})`,
        ),
      );
    }
  }
  const spec = isObject(o['spec']) ? o['spec'] : undefined;
  const prevSpec = previous && isObject(previous['spec']) ? previous['spec'] : undefined;
  switch (r.kind) {
    case 'Deployment':
    case 'ReplicaSet': {
      if (!spec) {
        causes.push(required('spec.selector'), required('spec.template.spec.containers'));
        break;
      }
      const selector = spec['selector'] as LabelSelectorSpec | undefined;
      const template = isObject(spec['template']) ? spec['template'] : {};
      const tmeta = isObject(template['metadata']) ? template['metadata'] : {};
      const tlabels = (tmeta['labels'] ?? {}) as Record<string, string>;
      if (
        !selector ||
        (Object.keys(selector.matchLabels ?? {}).length === 0 &&
          (selector.matchExpressions ?? []).length === 0)
      ) {
        causes.push(required('spec.selector'));
      } else if (!selectorPredicate(selector)(tlabels)) {
        causes.push(
          invalidValue(
            'spec.template.metadata.labels',
            goMap(tlabels),
            '`selector` does not match template `labels`',
          ),
        );
      }
      if (prevSpec && previous && !deepEqual(prevSpec['selector'], selector) && r.kind === 'Deployment') {
        causes.push(invalidValue('spec.selector', JSON.stringify(selector), 'field is immutable'));
      }
      const replicas = spec['replicas'];
      if (
        replicas !== undefined &&
        (typeof replicas !== 'number' || replicas < 0 || !Number.isInteger(replicas))
      ) {
        causes.push(invalidValue('spec.replicas', String(replicas), 'must be greater than or equal to 0'));
      }
      validateContainers(
        isObject(template['spec']) ? template['spec'] : undefined,
        'spec.template.spec',
        causes,
      );
      if (r.kind === 'Deployment') {
        const strategy = isObject(spec['strategy']) ? spec['strategy'] : {};
        if (strategy['type'] === 'Recreate' && strategy['rollingUpdate'] !== undefined) {
          causes.push({
            reason: 'FieldValueForbidden',
            message: "Forbidden: may not be specified when strategy `type` is 'Recreate'",
            field: 'spec.strategy.rollingUpdate',
          });
        }
      }
      break;
    }
    case 'Job': {
      const template = spec && isObject(spec['template']) ? spec['template'] : {};
      const tspec = isObject(template['spec']) ? template['spec'] : undefined;
      validateContainers(tspec, 'spec.template.spec', causes);
      const rp = tspec?.['restartPolicy'];
      if (rp !== undefined && rp !== 'Never' && rp !== 'OnFailure') {
        causes.push({
          reason: 'FieldValueNotSupported',
          message: `Unsupported value: "${String(rp)}": supported values: "OnFailure", "Never"`,
          field: 'spec.template.spec.restartPolicy',
        });
      }
      if (prevSpec && !deepEqual(prevSpec['template'], spec?.['template'])) {
        causes.push(invalidValue('spec.template', '...', 'field is immutable'));
      }
      break;
    }
    case 'Pod':
      validateContainers(spec, 'spec', causes);
      break;
    case 'Service': {
      const ports = spec?.['ports'];
      if (
        spec?.['clusterIP'] !== 'None' &&
        spec?.['type'] !== 'ExternalName' &&
        (!Array.isArray(ports) || ports.length === 0)
      ) {
        causes.push(required('spec.ports'));
      }
      if (Array.isArray(ports)) {
        ports.forEach((p, i) => {
          const port = isObject(p) ? p['port'] : undefined;
          if (typeof port !== 'number' || port < 1 || port > 65535) {
            causes.push(
              invalidValue(`spec.ports[${i}].port`, String(port), 'must be between 1 and 65535, inclusive'),
            );
          }
        });
      }
      break;
    }
    case 'ConfigMap':
    case 'Secret':
      for (const key of Object.keys(isObject(o['data']) ? o['data'] : {})) {
        if (!/^[-._a-zA-Z0-9]+$/.test(key)) {
          causes.push(
            invalidValue(
              `data[${key}]`,
              JSON.stringify(key),
              "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            ),
          );
        }
      }
      break;
  }
  return causes;
}
