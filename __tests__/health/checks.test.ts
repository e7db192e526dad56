import { describe, expect, test } from '@jest/globals';
import { parse } from 'yaml';
import { DEFAULT_LIMITS, parseChecks } from '../../packages/health/index.ts';

const defaults = { ...DEFAULT_LIMITS, prometheusAuth: {}, timeoutMs: 5000, namespace: 'shop-staging' };
const read = (yaml: string) => parseChecks(parse(yaml), defaults);

describe('parseChecks', () => {
  test('reads every check type with its defaults and per-check limits', () => {
    const checks = read(`
- name: api
  url: https://staging.shop.example.com/health
  json: .status == "healthy"
  max-latency: 300ms
  headers: { Authorization: Bearer abc }
- name: errors
  type: prometheus
  prometheus-url: http://prometheus:9090
  metric: request-error-rate
  selector: 'job="shop"'
  window: 2m
  failure-limit: 2
  no-data: fail
- name: pods
  workload: deployment/shop
- name: internal
  service: shop-staging/shop:http
  path: health
  expect-status: [200, 204]
`);
    expect(checks.map((c) => c.type)).toEqual(['http', 'prometheus', 'kubernetes', 'http']);
    expect(checks[0]).toMatchObject({
      method: 'GET',
      jsonPath: ['status'],
      equals: 'healthy',
      maxLatencyMs: 300,
      expectStatus: ['2xx'],
      failureLimit: 0,
      consecutiveErrorLimit: 4,
    });
    expect(checks[1]).toMatchObject({
      query:
        '(sum(rate(http_requests_total{job="shop",code=~"5.."}[2m])) or vector(0)) / sum(rate(http_requests_total{job="shop"}[2m]))',
      condition: { op: '<', value: 0.01 },
      failureLimit: 2,
      noData: 'fail',
    });
    expect(checks[2]).toMatchObject({ namespace: 'shop-staging', workload: 'shop', maxRestarts: 0 });
    expect(checks[3]).toMatchObject({
      target: { kind: 'service', namespace: 'shop-staging', service: 'shop', port: 'http', path: '/health' },
      expectStatus: ['200', '204'],
    });
  });

  test.each([
    ['a: 1', "Input 'checks' is not a list. Accepted: a YAML list of checks"],
    ['[]', "Input 'checks' is an empty list."],
    ['- url: http://x', "Input 'checks[0].name' is required. Accepted: a non-empty string."],
    [
      '- { name: a, type: smtp }',
      'Input \'checks[0] (a).type\' has the unknown type "smtp". Accepted: one of http, prometheus, kubernetes.',
    ],
    [
      '- { name: a, url: http://x, colour: red }',
      "Input 'checks[0] (a).colour' is not a field of a http check.",
    ],
    [
      '- { name: a, url: "ftp://x" }',
      "Input 'checks[0] (a).url' has a ftp: URL. Accepted: an absolute http(s) URL.",
    ],
    [
      '- { name: a, url: http://x, json: ".status = 1" }',
      'Input \'checks[0] (a).json\' has ".status = 1". Accepted: a path, == and a JSON value',
    ],
    [
      '- { name: a, url: http://x, json: "status == 1" }',
      'Input \'checks[0] (a).json\' has the JSON path "status", which must start with . and use .key or [index]',
    ],
    [
      '- { name: a, url: http://x, json-path: ".a[", equals: 1 }',
      'Input \'checks[0] (a).json-path\' has the JSON path ".a[", which has an unclosed or invalid [',
    ],
    [
      '- { name: a, url: http://x, max-latency: fast }',
      'Input \'checks[0] (a).max-latency\' has "fast", which is not a duration. Accepted: a duration such as',
    ],
    [
      '- { name: a, query: up, condition: "<<1", prometheus-url: "http://p" }',
      'Input \'checks[0] (a).condition\' has "<<1", which is not a condition.',
    ],
    [
      '- { name: a, query: up, condition: "< 1" }',
      "Input 'checks[0] (a).prometheus-url' is required for a prometheus check.",
    ],
    [
      '- { name: a, metric: apdex, prometheus-url: "http://p" }',
      'Input \'checks[0] (a).metric\' has "apdex". Accepted: one of request-success-rate, request-error-rate, latency-p99.',
    ],
    [
      '- { name: a, url: http://x, no-data: ignore }',
      'Input \'checks[0] (a).no-data\' has "ignore". Accepted: one of fail, pass, inconclusive.',
    ],
    [
      '- { name: a, url: http://x, failure-limit: -1 }',
      "Input 'checks[0] (a).failure-limit' has -1. Accepted: a whole number of at least 0.",
    ],
    [
      '- { name: a, service: "shop-staging/-shop:http" }',
      'Input \'checks[0] (a).service\' has "shop-staging/-shop:http". Accepted: a Service as name, namespace/name or namespace/name:port.',
    ],
    [
      '- { name: a, workload: "deployment/shop..v2" }',
      'Input \'checks[0] (a).workload\' has "deployment/shop..v2". Accepted: a Deployment as deployment/<name> or <name>.',
    ],
    [
      '- { name: a, url: http://x }\n- { name: a, url: http://y }',
      'Input \'checks[1] (a).name\' repeats "a".',
    ],
  ])('%s is rejected naming the check and the field', (yaml, message) => {
    expect(() => read(yaml)).toThrow(message);
  });

  test('an Authorization header cannot go to a service check, which the API server would swallow', () => {
    expect(() => read('- { name: a, service: "web:80", headers: { Authorization: "Bearer x" } }')).toThrow(
      "Input 'checks[0] (a).headers' sets Authorization on a service check",
    );
  });
});
