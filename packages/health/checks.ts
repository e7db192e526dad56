import { DNS_SUBDOMAIN_PATTERN, KUBE_NAME_PATTERN } from '../config/kube-names.ts';
import {
  basicAuthorization,
  DURATION_FORM,
  DURATION_MAX,
  headerSecrets,
  InputError,
  isLoopbackHost,
  parseDuration,
  redactUrl,
  urlCredentials,
  urlQuerySecrets,
} from '../core/index.ts';
import { type Condition, parseCondition } from './condition.ts';
import { type PathSegment, parseJsonPath } from './json-path.ts';

/** `shop`, `prod/shop`, `prod/shop:8080`: namespace and Service by Kubernetes' name rules. */
const SERVICE_REF = new RegExp(`^(?:(${KUBE_NAME_PATTERN})/)?(${KUBE_NAME_PATTERN})(?::([\\w-]+))?$`);
/** `shop` or `deployment/shop`; a Deployment's name is a DNS subdomain. */
const WORKLOAD_REF = new RegExp(`^(?:(deployment|deploy|deployments)/)?(${DNS_SUBDOMAIN_PATTERN})$`);

export const NO_DATA_POLICIES = ['fail', 'pass', 'inconclusive'] as const;
export type NoDataPolicy = (typeof NO_DATA_POLICIES)[number];

export interface CheckLimits {
  /** Failed measurements tolerated; one more fails the gate. */
  failureLimit: number;
  /** Errors in a row (the target could not be measured) tolerated; one more fails the gate. */
  consecutiveErrorLimit: number;
  /** Inconclusive measurements tolerated; one more ends the gate as inconclusive. */
  inconclusiveLimit: number;
  noData: NoDataPolicy;
}

export type HttpTarget =
  | { kind: 'url'; url: string }
  | { kind: 'service'; namespace: string; service: string; port?: string; path: string };

export interface HttpCheck extends CheckLimits {
  type: 'http';
  name: string;
  target: HttpTarget;
  method: string;
  headers: Record<string, string>;
  body?: string;
  /** Accepted statuses: exact codes or classes like 2xx. */
  expectStatus: string[];
  jsonPath?: PathSegment[];
  jsonPathText?: string;
  equals?: unknown;
  matches?: RegExp;
  bodyPattern?: RegExp;
  maxLatencyMs?: number;
  timeoutMs: number;
}

export interface PrometheusAuth {
  bearerToken?: string;
  username?: string;
  password?: string;
}

export interface PrometheusCheck extends CheckLimits {
  type: 'prometheus';
  name: string;
  query: string;
  condition: Condition;
  url: string;
  auth: PrometheusAuth;
  /** The ready-made metric this query came from, if any. */
  preset?: string;
  timeoutMs: number;
}

export interface KubernetesCheck extends CheckLimits {
  type: 'kubernetes';
  name: string;
  namespace: string;
  kind: 'deployment';
  workload: string;
  /** Container restarts tolerated during the window (counted from the first measurement). */
  maxRestarts: number;
  timeoutMs: number;
}

export type Check = HttpCheck | PrometheusCheck | KubernetesCheck;
const CHECK_TYPES = ['http', 'prometheus', 'kubernetes'] as const;

export interface CheckDefaults extends CheckLimits {
  prometheusUrl?: string;
  prometheusAuth: PrometheusAuth;
  namespace?: string;
  timeoutMs: number;
}

export const DEFAULT_LIMITS: CheckLimits = {
  failureLimit: 0,
  consecutiveErrorLimit: 4,
  inconclusiveLimit: 0,
  noData: 'inconclusive',
};

const KNOWN_FIELDS: Record<Check['type'], string[]> = {
  http: [
    'url',
    'service',
    'namespace',
    'port',
    'path',
    'method',
    'headers',
    'body',
    'expect-status',
    'json',
    'json-path',
    'equals',
    'matches',
    'body-pattern',
    'max-latency',
    'timeout',
  ],
  prometheus: [
    'query',
    'metric',
    'selector',
    'window',
    'request-metric',
    'latency-metric',
    'code-label',
    'condition',
    'prometheus-url',
    'quantile',
    'timeout',
  ],
  kubernetes: ['workload', 'namespace', 'max-restarts', 'timeout'],
};
const COMMON_FIELDS = [
  'name',
  'type',
  'failure-limit',
  'consecutive-error-limit',
  'inconclusive-limit',
  'no-data',
];

/**
 * Ready-made PromQL in the spirit of Flagger's built-in metrics. The part counted (errors, or
 * successes) falls back to 0 with `or vector(0)`: a service with no 5xx has no 5xx series at all,
 * which is a rate of 0, not "no data". No traffic at all still gives no data.
 */
const PROMETHEUS_PRESETS = {
  'request-success-rate': {
    condition: '>= 0.99',
    build: (p: PresetParams) =>
      `(sum(rate(${p.requestMetric}{${join(p.selector, `${p.codeLabel}!~"5.."`)}}[${p.window}])) or vector(0)) / sum(rate(${p.requestMetric}{${p.selector}}[${p.window}]))`,
  },
  'request-error-rate': {
    condition: '< 0.01',
    build: (p: PresetParams) =>
      `(sum(rate(${p.requestMetric}{${join(p.selector, `${p.codeLabel}=~"5.."`)}}[${p.window}])) or vector(0)) / sum(rate(${p.requestMetric}{${p.selector}}[${p.window}]))`,
  },
  'latency-p99': {
    condition: '< 0.5',
    build: (p: PresetParams) =>
      `histogram_quantile(${p.quantile}, sum by (le) (rate(${p.latencyMetric}_bucket{${p.selector}}[${p.window}])))`,
  },
} as const;

interface PresetParams {
  selector: string;
  window: string;
  requestMetric: string;
  latencyMetric: string;
  codeLabel: string;
  quantile: string;
}

function join(selector: string, extra: string): string {
  return selector ? `${selector},${extra}` : extra;
}

class CheckReader {
  readonly obj: Record<string, unknown>;
  readonly where: string;
  constructor(obj: Record<string, unknown>, where: string) {
    this.obj = obj;
    this.where = where;
  }
  fail(field: string, problem: string, accepted: string): never {
    throw new InputError(`${this.where}.${field}`, problem, accepted);
  }
  has(field: string): boolean {
    return this.obj[field] !== undefined && this.obj[field] !== null;
  }
  string(field: string, required = false): string | undefined {
    const v = this.obj[field];
    if (v === undefined || v === null || v === '') {
      if (required) this.fail(field, 'is required', 'a non-empty string');
      return undefined;
    }
    if (typeof v !== 'string' && typeof v !== 'number')
      this.fail(field, `is a ${Array.isArray(v) ? 'list' : typeof v}`, 'a string');
    return String(v);
  }
  int(field: string, fallback: number, min = 0): number {
    const v = this.obj[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min)
      this.fail(field, `has ${JSON.stringify(v)}`, `a whole number of at least ${min}`);
    return v as number;
  }
  duration(field: string, fallback?: number, maxMs: number = DURATION_MAX.timeout): number | undefined {
    const v = this.string(field);
    if (v === undefined) return fallback;
    return parseDuration(v, `${this.where}.${field}`, { maxMs });
  }
  regex(field: string): RegExp | undefined {
    const v = this.string(field);
    if (v === undefined) return undefined;
    try {
      return new RegExp(v);
    } catch (error) {
      this.fail(
        field,
        `is not a valid regular expression (${(error as Error).message})`,
        'a JavaScript regular expression',
      );
    }
  }
}

function readLimits(r: CheckReader, defaults: CheckLimits): CheckLimits {
  const noData = r.string('no-data') ?? defaults.noData;
  if (!(NO_DATA_POLICIES as readonly string[]).includes(noData)) {
    r.fail('no-data', `has ${JSON.stringify(noData)}`, `one of ${NO_DATA_POLICIES.join(', ')}`);
  }
  return {
    failureLimit: r.int('failure-limit', defaults.failureLimit),
    consecutiveErrorLimit: r.int('consecutive-error-limit', defaults.consecutiveErrorLimit),
    inconclusiveLimit: r.int('inconclusive-limit', defaults.inconclusiveLimit),
    noData: noData as NoDataPolicy,
  };
}

function withoutUserInfo(url: URL): string {
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return copy.href;
}

function readHttp(r: CheckReader, name: string, limits: CheckLimits, defaults: CheckDefaults): HttpCheck {
  let target: HttpTarget;
  let userInfoAuthorization: string | undefined;
  const url = r.string('url');
  const service = r.string('service');
  if (url && service) r.fail('url', 'is set together with service', 'either url or service');
  if (url) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      r.fail('url', `has ${JSON.stringify(redactUrl(url))}, which is not a URL`, 'an absolute http(s) URL');
    }
    if (parsed!.protocol !== 'http:' && parsed!.protocol !== 'https:')
      r.fail('url', `has a ${parsed!.protocol} URL`, 'an absolute http(s) URL');
    const credentials = urlCredentials(url);
    if (credentials) {
      // fetch refuses a URL with user info; send it as the Basic header a browser would make of it.
      userInfoAuthorization = basicAuthorization(credentials.username, credentials.password);
      target = { kind: 'url', url: withoutUserInfo(parsed!) };
    } else {
      target = { kind: 'url', url };
    }
  } else if (service) {
    // `service: shop`, `service: prod/shop`, `service: prod/shop:8080`
    const m = SERVICE_REF.exec(service);
    if (!m)
      r.fail(
        'service',
        `has ${JSON.stringify(service)}`,
        'a Service as name, namespace/name or namespace/name:port',
      );
    const namespace = m![1] ?? r.string('namespace') ?? defaults.namespace;
    if (!namespace)
      r.fail(
        'namespace',
        'is required for a service check without a namespace',
        'a namespace, here or in the namespace input',
      );
    const port = m![3] ?? r.string('port');
    const path = r.string('path') ?? '/';
    target = {
      kind: 'service',
      namespace: namespace!,
      service: m![2]!,
      ...(port ? { port } : {}),
      path: path.startsWith('/') ? path : `/${path}`,
    };
  } else {
    r.fail(
      'url',
      'is required (or service)',
      'an absolute http(s) URL, or service: namespace/name:port with path',
    );
  }

  const headersRaw = r.obj.headers;
  const headers: Record<string, string> = {};
  if (headersRaw !== undefined) {
    if (typeof headersRaw !== 'object' || headersRaw === null || Array.isArray(headersRaw))
      r.fail('headers', 'is not a map', 'a map of header names to values');
    for (const [k, v] of Object.entries(headersRaw as Record<string, unknown>)) headers[k] = String(v);
  }
  if (userInfoAuthorization) {
    if (Object.keys(headers).some((h) => h.toLowerCase() === 'authorization'))
      r.fail(
        'url',
        'has user info and the check sets an Authorization header too',
        'credentials either in the URL or in the Authorization header',
      );
    headers.authorization = userInfoAuthorization;
  }
  if (target.kind === 'service' && Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')) {
    r.fail(
      'headers',
      'sets Authorization on a service check, which the API server takes for itself and never forwards',
      'headers other than Authorization, or a url check',
    );
  }
  const statusRaw = r.obj['expect-status'];
  const expectStatus = (
    statusRaw === undefined ? ['2xx'] : Array.isArray(statusRaw) ? statusRaw : [statusRaw]
  ).map(String);
  for (const s of expectStatus) {
    if (!/^[1-5](\d\d|xx)$/.test(s))
      r.fail(
        'expect-status',
        `has ${JSON.stringify(s)}`,
        'HTTP status codes or classes, such as 200, 204 or 2xx',
      );
  }

  let jsonPath: PathSegment[] | undefined;
  let jsonPathText: string | undefined;
  let equals: unknown;
  let matches = r.regex('matches');
  const compact = r.string('json');
  if (compact) {
    // `.status == "healthy"`, `.checks[0].ok == true`, `.version =~ /^v2/`
    const m = /^(\S+)\s*(==|=~)\s*(.+)$/.exec(compact.trim());
    if (!m)
      r.fail(
        'json',
        `has ${JSON.stringify(compact)}`,
        'a path, == and a JSON value (.status == "healthy"), or =~ and /regex/',
      );
    jsonPathText = m![1]!;
    jsonPath = parseJsonPath(jsonPathText, `${r.where}.json`);
    if (m![2] === '==') {
      try {
        equals = JSON.parse(m![3]!);
      } catch {
        r.fail(
          'json',
          `compares with ${m![3]}, which is not a JSON value`,
          'a JSON value such as "healthy", true or 3',
        );
      }
    } else {
      const re = /^\/(.*)\/([a-z]*)$/.exec(m![3]!.trim());
      if (!re)
        r.fail('json', `matches ${m![3]}, which is not /regex/`, 'a regular expression between slashes');
      try {
        matches = new RegExp(re![1]!, re![2]);
      } catch (error) {
        r.fail(
          'json',
          `has an invalid regular expression (${(error as Error).message})`,
          'a JavaScript regular expression',
        );
      }
    }
  } else if (r.has('json-path')) {
    jsonPathText = r.string('json-path', true)!;
    jsonPath = parseJsonPath(jsonPathText, `${r.where}.json-path`);
    if (r.has('equals')) equals = r.obj.equals;
    if (!r.has('equals') && !matches)
      r.fail('json-path', 'needs equals or matches', 'json-path with equals: <value> or matches: <regex>');
  } else if (r.has('equals') || matches) {
    r.fail('json-path', 'is required with equals or matches', 'a JSON path such as .status');
  }

  const method = (r.string('method') ?? 'GET').toUpperCase();
  if (!/^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)$/.test(method))
    r.fail('method', `has ${JSON.stringify(method)}`, 'an HTTP method such as GET or POST');
  const body = r.string('body');
  return {
    type: 'http',
    name,
    target,
    method,
    headers,
    ...(body !== undefined ? { body } : {}),
    expectStatus,
    ...(jsonPath ? { jsonPath, jsonPathText } : {}),
    ...(r.has('equals') || (compact && equals !== undefined) ? { equals } : {}),
    ...(matches ? { matches } : {}),
    ...(r.regex('body-pattern') ? { bodyPattern: r.regex('body-pattern')! } : {}),
    ...(r.has('max-latency') ? { maxLatencyMs: r.duration('max-latency')! } : {}),
    timeoutMs: r.duration('timeout', defaults.timeoutMs)!,
    ...limits,
  };
}

function promDuration(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000}m` : `${Math.max(1, Math.round(ms / 1000))}s`;
}

function readPrometheus(
  r: CheckReader,
  name: string,
  limits: CheckLimits,
  defaults: CheckDefaults,
): PrometheusCheck {
  const url = r.string('prometheus-url') ?? defaults.prometheusUrl;
  if (!url)
    r.fail(
      'prometheus-url',
      'is required for a prometheus check',
      'a Prometheus base URL here or in the prometheus-url input',
    );
  let parsed: URL;
  try {
    parsed = new URL(url!);
  } catch {
    r.fail(
      'prometheus-url',
      `has ${JSON.stringify(redactUrl(url!))}, which is not a URL`,
      'a Prometheus base URL such as http://prometheus:9090',
    );
  }
  if (parsed!.protocol !== 'http:' && parsed!.protocol !== 'https:')
    r.fail(
      'prometheus-url',
      `has a ${parsed!.protocol} URL`,
      'a Prometheus base URL such as http://prometheus:9090',
    );
  let auth = defaults.prometheusAuth;
  let baseUrl = url!;
  const credentials = urlCredentials(url!);
  if (credentials) {
    if (auth.bearerToken || auth.username)
      r.fail(
        'prometheus-url',
        'has user info and prometheus-token or prometheus-username is set too',
        'credentials either in the URL or in the prometheus inputs',
      );
    // fetch refuses a URL with user info; it becomes the Basic credentials of the queries.
    auth = { username: credentials.username, password: credentials.password };
    baseUrl = withoutUserInfo(parsed!);
  }
  // Plain http to another machine hands the credential to anyone on the way.
  if (
    (auth.bearerToken || auth.username) &&
    parsed!.protocol === 'http:' &&
    !isLoopbackHost(parsed!.hostname)
  )
    r.fail(
      'prometheus-url',
      `is plain http to ${parsed!.hostname} while a credential is given (prometheus-token, prometheus-username/password or user info)`,
      'an https URL when a credential is given (plain http only to localhost)',
    );
  const metric = r.string('metric');
  let query = r.string('query');
  let conditionText = r.string('condition');
  if (metric && query)
    r.fail('metric', 'is set together with query', 'either query (PromQL) or metric (a ready-made query)');
  if (metric) {
    const preset = PROMETHEUS_PRESETS[metric as keyof typeof PROMETHEUS_PRESETS];
    if (!preset)
      r.fail(
        'metric',
        `has ${JSON.stringify(metric)}`,
        `one of ${Object.keys(PROMETHEUS_PRESETS).join(', ')}`,
      );
    const windowMs = r.duration('window', 60_000, DURATION_MAX.window)!;
    query = preset!.build({
      selector: r.string('selector') ?? '',
      window: promDuration(windowMs),
      requestMetric: r.string('request-metric') ?? 'http_requests_total',
      latencyMetric: r.string('latency-metric') ?? 'http_request_duration_seconds',
      codeLabel: r.string('code-label') ?? 'code',
      quantile: r.string('quantile') ?? '0.99',
    });
    conditionText ??= preset!.condition;
  }
  if (!query)
    r.fail(
      'query',
      'is required for a prometheus check',
      'a PromQL instant query, or metric: with a ready-made query',
    );
  if (!conditionText)
    r.fail('condition', 'is required for a prometheus check', "a comparison such as '< 0.01'");
  return {
    type: 'prometheus',
    name,
    query: query!,
    condition: parseCondition(conditionText!, `${r.where}.condition`),
    url: baseUrl.replace(/\/+$/, ''),
    auth,
    ...(metric ? { preset: metric } : {}),
    timeoutMs: r.duration('timeout', defaults.timeoutMs)!,
    ...limits,
  };
}

function readKubernetes(
  r: CheckReader,
  name: string,
  limits: CheckLimits,
  defaults: CheckDefaults,
): KubernetesCheck {
  const workload = r.string('workload', true)!;
  const m = WORKLOAD_REF.exec(workload);
  if (!m)
    r.fail('workload', `has ${JSON.stringify(workload)}`, 'a Deployment as deployment/<name> or <name>');
  const namespace = r.string('namespace') ?? defaults.namespace;
  if (!namespace)
    r.fail('namespace', 'is required for a kubernetes check', 'a namespace, here or in the namespace input');
  return {
    type: 'kubernetes',
    name,
    namespace: namespace!,
    kind: 'deployment',
    workload: m![2]!,
    maxRestarts: r.int('max-restarts', 0),
    timeoutMs: r.duration('timeout', defaults.timeoutMs)!,
    ...limits,
  };
}

const SENSITIVE_HEADER = /auth|token|key|secret|cookie|password|session/i;

/**
 * The credentials the checks carry (sensitive headers, Basic headers made from URL user info,
 * Prometheus auth) in every form a reflecting response could show them: the action masks them
 * before the first probe.
 */
export function checkSecrets(checks: Check[]): string[] {
  const out: string[] = [];
  for (const check of checks) {
    if (check.type === 'http') {
      if (check.target.kind === 'url') out.push(...urlQuerySecrets(check.target.url));
      for (const [name, value] of Object.entries(check.headers))
        if (SENSITIVE_HEADER.test(name)) out.push(...headerSecrets(value));
    } else if (check.type === 'prometheus') {
      out.push(...urlQuerySecrets(check.url));
      if (check.auth.bearerToken) out.push(...headerSecrets(`Bearer ${check.auth.bearerToken}`));
      if (check.auth.username)
        out.push(...headerSecrets(basicAuthorization(check.auth.username, check.auth.password ?? '')));
    }
  }
  return [...new Set(out)];
}

/**
 * Turns the `checks` document into typed checks, rejecting anything malformed with an error that
 * names the check and the field, before any probe runs.
 */
export function parseChecks(doc: unknown, defaults: CheckDefaults, inputName = 'checks'): Check[] {
  if (!Array.isArray(doc) || doc.length === 0) {
    throw new InputError(
      inputName,
      Array.isArray(doc) ? 'is an empty list' : 'is not a list',
      'a YAML list of checks, each with name and type (http, prometheus or kubernetes)',
    );
  }
  const names = new Set<string>();
  return doc.map((item, index) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      throw new InputError(
        `${inputName}[${index}]`,
        'is not a map',
        'a check with name, type and its fields',
      );
    }
    const obj = item as Record<string, unknown>;
    const label =
      typeof obj.name === 'string' && obj.name
        ? `${inputName}[${index}] (${obj.name})`
        : `${inputName}[${index}]`;
    const r = new CheckReader(obj, label);
    const name = r.string('name', true)!;
    if (names.has(name)) r.fail('name', `repeats ${JSON.stringify(name)}`, 'a name unique among the checks');
    names.add(name);
    const type =
      r.string('type') ??
      (r.has('url') || r.has('service')
        ? 'http'
        : r.has('query') || r.has('metric')
          ? 'prometheus'
          : r.has('workload')
            ? 'kubernetes'
            : undefined);
    if (!type || !(CHECK_TYPES as readonly string[]).includes(type)) {
      r.fail(
        'type',
        type ? `has the unknown type ${JSON.stringify(type)}` : 'is missing',
        `one of ${CHECK_TYPES.join(', ')}`,
      );
    }
    const known = new Set([...COMMON_FIELDS, ...KNOWN_FIELDS[type as Check['type']]]);
    for (const key of Object.keys(obj)) {
      if (!known.has(key)) r.fail(key, `is not a field of a ${type} check`, [...known].join(', '));
    }
    const limits = readLimits(r, defaults);
    if (type === 'http') return readHttp(r, name, limits, defaults);
    if (type === 'prometheus') return readPrometheus(r, name, limits, defaults);
    return readKubernetes(r, name, limits, defaults);
  });
}

export { DURATION_FORM };
