/** Defaulting and validation as the API server does them before storing. */

import { defaultWorkloadSet } from './controllers/revisions.ts';
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

function defaultPodSpec(spec: JsonObject, restartPolicy = 'Always'): void {
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
    case 'StatefulSet':
    case 'DaemonSet':
      if (!spec) return;
      defaultWorkloadSet(r.kind, spec);
      defaultTemplate(spec);
      return;
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

/** How field.Invalid prints a bad value: numbers and booleans bare, strings quoted, the rest as JSON. */
function shown(v: unknown): string {
  return JSON.stringify(v ?? null);
}

function required(field: string, what = ''): StatusCause {
  return { reason: 'FieldValueRequired', message: `Required value${what ? `: ${what}` : ''}`, field };
}

function invalidValue(field: string, value: string, detail: string): StatusCause {
  return { reason: 'FieldValueInvalid', message: `Invalid value: ${value}: ${detail}`, field };
}

function notSupported(field: string, value: unknown, supported: string[]): StatusCause {
  return {
    reason: 'FieldValueNotSupported',
    message: `Unsupported value: ${shown(value)}: supported values: ${supported.map((v) => `"${v}"`).join(', ')}`,
    field,
  };
}

const NEGATIVE = 'must be greater than or equal to 0';

function nonNegative(field: string, v: unknown, causes: StatusCause[]): void {
  if (typeof v === 'number' && v < 0) causes.push(invalidValue(field, String(v), NEGATIVE));
}

const QUANTITY = /^([+-]?[0-9.]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|e[0-9]+)?$/;
const SUFFIX: Record<string, number> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

function quantity(v: unknown): number | undefined {
  const m = QUANTITY.exec(String(v));
  if (!m) return undefined;
  const suffix = m[2] ?? '';
  const factor = suffix.startsWith('e') ? 10 ** Number(suffix.slice(1)) : SUFFIX[suffix];
  return factor === undefined ? undefined : Number(m[1]) * factor;
}

function validateContainers(spec: JsonObject | undefined, prefix: string, causes: StatusCause[]): void {
  const containers = spec?.['containers'];
  if (!Array.isArray(containers) || containers.length === 0) {
    causes.push(required(`${prefix}.containers`));
    return;
  }
  const names = new Set<string>();
  containers.forEach((c, i) => {
    if (!isObject(c)) return;
    const at = `${prefix}.containers[${i}]`;
    if (!c['name']) causes.push(required(`${at}.name`));
    else if (!DNS1123_LABEL.test(String(c['name']))) {
      causes.push(
        invalidValue(
          `${at}.name`,
          JSON.stringify(c['name']),
          "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ),
      );
    }
    if (c['name'] && names.has(String(c['name']))) {
      causes.push({
        reason: 'FieldValueDuplicate',
        message: `Duplicate value: ${shown(c['name'])}`,
        field: `${at}.name`,
      });
    }
    names.add(String(c['name'] ?? ''));
    if (!c['image']) causes.push(required(`${at}.image`));
    const ports = Array.isArray(c['ports']) ? c['ports'] : [];
    ports.forEach((p, j) => {
      if (!isObject(p)) return;
      const port = p['containerPort'];
      const field = `${at}.ports[${j}].containerPort`;
      if (port === undefined || port === 0) causes.push(required(field));
      else if (typeof port === 'number' && (port < 1 || port > 65535)) {
        causes.push(invalidValue(field, String(port), 'must be between 1 and 65535, inclusive'));
      }
    });
    const policy = c['imagePullPolicy'];
    if (policy !== undefined && !['Always', 'IfNotPresent', 'Never'].includes(String(policy))) {
      causes.push(notSupported(`${at}.imagePullPolicy`, policy, ['Always', 'IfNotPresent', 'Never']));
    }
    const resources = isObject(c['resources']) ? c['resources'] : {};
    const requests = isObject(resources['requests']) ? resources['requests'] : {};
    const limits = isObject(resources['limits']) ? resources['limits'] : {};
    for (const [name, req] of Object.entries(requests)) {
      const lim = limits[name];
      const a = quantity(req);
      const b = quantity(lim);
      if (lim !== undefined && a !== undefined && b !== undefined && a > b) {
        causes.push(
          invalidValue(
            `${at}.resources.requests`,
            JSON.stringify(String(req)),
            `must be less than or equal to ${name} limit of ${String(lim)}`,
          ),
        );
      }
    }
  });
}

function validateRestartPolicy(tspec: JsonObject | undefined, prefix: string, causes: StatusCause[]): void {
  const rp = tspec?.['restartPolicy'];
  if (rp !== undefined && !['Always', 'OnFailure', 'Never'].includes(String(rp))) {
    causes.push(notSupported(`${prefix}.restartPolicy`, rp, ['Always', 'OnFailure', 'Never']));
  }
}

const PERCENT = /^[0-9]+%$/;
const PERCENT_MESSAGE =
  "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";

function intOrPercent(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && PERCENT.test(v)) return Number(v.slice(0, -1));
  return undefined;
}

function validateStrategy(spec: JsonObject, causes: StatusCause[]): void {
  const strategy = isObject(spec['strategy']) ? spec['strategy'] : {};
  const type = strategy['type'];
  if (type === 'Recreate') {
    if (strategy['rollingUpdate'] !== undefined) {
      causes.push({
        reason: 'FieldValueForbidden',
        message: "Forbidden: may not be specified when strategy `type` is 'Recreate'",
        field: 'spec.strategy.rollingUpdate',
      });
    }
    return;
  }
  if (type !== 'RollingUpdate') {
    // The internal Go type has no json tags, so the bad value prints with Go field names.
    const ru = isObject(strategy['rollingUpdate']) ? strategy['rollingUpdate'] : undefined;
    const internal = {
      Type: type ?? '',
      RollingUpdate: ru
        ? { MaxUnavailable: ru['maxUnavailable'] ?? null, MaxSurge: ru['maxSurge'] ?? null }
        : null,
    };
    causes.push(notSupported('spec.strategy', internal, ['Recreate', 'RollingUpdate']));
    return;
  }
  const ru = isObject(strategy['rollingUpdate']) ? strategy['rollingUpdate'] : {};
  const check = (key: string) => {
    const v = ru[key];
    const field = `spec.strategy.rollingUpdate.${key}`;
    if (typeof v === 'string' && !PERCENT.test(v))
      causes.push(invalidValue(field, shown(v), PERCENT_MESSAGE));
    else nonNegative(field, v, causes);
  };
  check('maxUnavailable');
  check('maxSurge');
  if (intOrPercent(ru['maxUnavailable']) === 0 && intOrPercent(ru['maxSurge']) === 0) {
    causes.push(
      invalidValue(
        'spec.strategy.rollingUpdate.maxUnavailable',
        shown(ru['maxUnavailable']),
        'may not be 0 when `maxSurge` is 0',
      ),
    );
  }
  const mu = ru['maxUnavailable'];
  if (typeof mu === 'string' && PERCENT.test(mu) && Number(mu.slice(0, -1)) > 100) {
    causes.push(
      invalidValue('spec.strategy.rollingUpdate.maxUnavailable', shown(mu), 'must not be greater than 100%'),
    );
  }
}

/** ValidateDeploymentSpec / ValidateReplicaSetSpec, in the real order. */
function validateWorkloadSpec(r: ResourceInfo, spec: JsonObject, causes: StatusCause[]): void {
  nonNegative('spec.replicas', spec['replicas'], causes);
  const selector = spec['selector'] as LabelSelectorSpec | undefined;
  const template = isObject(spec['template']) ? spec['template'] : {};
  const tmeta = isObject(template['metadata']) ? template['metadata'] : {};
  const tlabels = (tmeta['labels'] ?? {}) as Record<string, string>;
  const mismatch = () =>
    causes.push(
      invalidValue(
        'spec.template.metadata.labels',
        shown(tlabels),
        '`selector` does not match template `labels`',
      ),
    );
  if (!isObject(spec['selector'])) {
    causes.push(required('spec.selector'));
    mismatch();
  } else if (
    Object.keys(selector?.matchLabels ?? {}).length === 0 &&
    (selector?.matchExpressions ?? []).length === 0
  ) {
    causes.push(invalidValue('spec.selector', shown(selector), 'empty selector is invalid for deployment'));
  } else if (!selectorPredicate(selector!)(tlabels)) mismatch();
  const tspec = isObject(template['spec']) ? template['spec'] : undefined;
  validateContainers(tspec, 'spec.template.spec', causes);
  validateRestartPolicy(tspec, 'spec.template.spec', causes);
  const rp = tspec?.['restartPolicy'];
  if (rp !== 'Always' && ['OnFailure', 'Never'].includes(String(rp))) {
    causes.push(notSupported('spec.template.spec.restartPolicy', rp, ['Always']));
  }
  if (tspec?.['activeDeadlineSeconds'] !== undefined) {
    causes.push({
      reason: 'FieldValueForbidden',
      message: 'Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported',
      field: 'spec.template.spec.activeDeadlineSeconds',
    });
  }
  if (r.kind === 'Deployment') {
    validateStrategy(spec, causes);
    nonNegative('spec.minReadySeconds', spec['minReadySeconds'], causes);
    nonNegative('spec.revisionHistoryLimit', spec['revisionHistoryLimit'], causes);
    const pds = spec['progressDeadlineSeconds'];
    if (typeof pds === 'number') {
      nonNegative('spec.progressDeadlineSeconds', pds, causes);
      const minReady = typeof spec['minReadySeconds'] === 'number' ? spec['minReadySeconds'] : 0;
      if (pds <= minReady) {
        causes.push(
          invalidValue('spec.progressDeadlineSeconds', String(pds), 'must be greater than minReadySeconds'),
        );
      }
    }
  } else nonNegative('spec.minReadySeconds', spec['minReadySeconds'], causes);
}

const MAX_DATA_SIZE = 1024 * 1024;

function dataSize(o: KubeObject, decode: boolean): number {
  let total = 0;
  for (const key of ['data', 'binaryData']) {
    const data = o[key];
    if (!isObject(data)) continue;
    for (const v of Object.values(data)) {
      total +=
        decode || key === 'binaryData'
          ? Buffer.from(String(v), 'base64').length
          : Buffer.byteLength(String(v));
    }
  }
  return total;
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
      validateWorkloadSpec(r, spec ?? {}, causes);
      if (prevSpec && previous && !deepEqual(prevSpec['selector'], spec?.['selector'])) {
        causes.push(invalidValue('spec.selector', shown(spec?.['selector']), 'field is immutable'));
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
    case 'Lease': {
      const d = spec?.['leaseDurationSeconds'];
      if (typeof d === 'number' && d <= 0) {
        causes.push(invalidValue('spec.leaseDurationSeconds', String(d), 'must be greater than 0'));
      }
      nonNegative('spec.leaseTransitions', spec?.['leaseTransitions'], causes);
      break;
    }
    case 'ConfigMap':
    case 'Secret':
      if (dataSize(o, r.kind === 'Secret') > MAX_DATA_SIZE) {
        causes.push({
          reason: 'FieldValueTooLong',
          message: `Too long: may not be more than ${MAX_DATA_SIZE} bytes`,
          field: r.kind === 'Secret' ? 'data' : '[]',
        });
      }
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
