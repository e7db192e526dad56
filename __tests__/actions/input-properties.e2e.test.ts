import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import pg from 'pg';
import type { InputField, Schema } from '../../packages/config/index.ts';
import { isExpectedError } from '../../packages/core/index.ts';
import { actionDirs } from '../../scripts/action-docs.ts';
import { type KubeSim, startKubeSim } from '../../tooling/kube-sim/index.ts';
import { LocalGitHub } from '../../tooling/local-services/local-github.ts';
import { LocalSlack } from '../../tooling/local-services/local-slack.ts';
import {
  type PostgresServer,
  postgresAvailable,
  startPostgres,
} from '../../tooling/local-services/postgres.ts';
import {
  findLeaks,
  REPO_ROOT,
  readActionDefinition,
  runBuiltAction,
  type StepResult,
} from '../../tooling/runners/action-runner.ts';

/**
 * The input layer under random and adversarial text, over every input of every action as its
 * action.yml declares it. In process, every field's parser either accepts a value or throws one
 * InputError naming its input. Through the built bundle, a sample of steps against kube-sim,
 * PostgreSQL and the local Slack and GitHub never print a stack trace or a second ::error::, never
 * leak a secret, and never change the cluster or the database when they fail on an input.
 */

// Every action of the repository, so a new one is covered the day it lands.
const ACTIONS = actionDirs().map((dir) => basename(dir));
const SECRET_MARK = 'S3cr3tMark';
const STACK = /\n\s+at [^\n]+:\d+:\d+\)?|\b(TypeError|RangeError|ReferenceError|SyntaxError)\b: /;

const schemas = new Map<string, Schema>();
const declared = new Map<string, string[]>();

beforeAll(async () => {
  for (const action of ACTIONS) {
    schemas.set(action, ((await import(`../../actions/${action}.ts`)) as { schema: Schema }).schema);
    declared.set(action, Object.keys(readActionDefinition(join(REPO_ROOT, action)).inputs));
  }
});

/** Text no one means, whatever the input: control characters, workflow commands, injections, sizes. */
const HOSTILE = [
  ' ',
  '\t\n',
  '0',
  '-1',
  'NaN',
  'Infinity',
  '1e400',
  '9'.repeat(400),
  'null',
  '~',
  '[]',
  '{}',
  '- a',
  '*alias',
  '&a [*a, *a]',
  'a: [',
  '../../../../etc/passwd',
  '/dev/zero',
  '/proc/self/environ',
  'line one\n::error::forged',
  'text\r::warning::forged',
  '%0A::error::forged%0D',
  '::add-mask::nothing',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: an unevaluated expression, as a caller could pass it
  '${{ github.token }}',
  '$(id)',
  '`id`',
  "'; DROP TABLE users; --",
  '<script>alert(1)</script>',
  '<!channel> @here',
  '|a|b|',
  'a'.repeat(20_000),
  '\u202eevil\u200b\ufeff',
  '😀'.repeat(50),
  'k=v,k=w',
  '=value',
  'key=',
];

const BY_KIND: Record<string, string[]> = {
  duration: [
    '25d',
    '60d',
    '8d',
    '-5s',
    '1h 30m',
    '1.5.5s',
    '0',
    '0ms',
    '24h',
    '90',
    '5m',
    `${'9'.repeat(30)}ms`,
  ],
  integer: ['2147483648', '99999999999999999999', '-0', '1.5', '0x10', '1e3', ' 3 ', '100001', '1'],
  boolean: ['TRUE', 'yes', 'Off', '2', 'truee', 'false'],
  url: [
    'javascript:alert(1)',
    'file:///etc/passwd',
    'http://[::1',
    'https://example.com/%zz',
    `http://user:${SECRET_MARK}pw@127.0.0.1:1/`,
    'ftp://example.com/',
    'http://127.0.0.1:1/',
  ],
  list: ['a,,b', '#only a comment', 'a\nb\nc'],
  map: ['a=b,a=c', 'k==v', '#c\nk=v', 'not a pair'],
  enum: ['RUN', 'Deploy ', 'other', 'up;down'],
  yaml: [
    '- name: x\n  type: http\n  url: http://127.0.0.1:1/',
    '!!js/function "function(){}"',
    '{a: 1}',
    '['.repeat(3000),
    '- &a {name: x, url: "http://127.0.0.1:1/"}\n- *a',
    '- name: x\n  type: prometheus\n  query: up\n  condition: "< 1"\n  prometheus-url: "http://u:S3cr3tMarkpw@127.0.0.1:1"',
  ],
  secret: [`${SECRET_MARK}-one`, `line\n${SECRET_MARK}-two`, `https://u:${SECRET_MARK}pw@127.0.0.1:1/x`],
  string: ['shop', 'UPPER', 'a/b', 'a b'],
};

function valuesFor(field: InputField<unknown>): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...HOSTILE, ...(BY_KIND[field.kind] ?? [])) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 40 }).map((s) => `${s}\n${s}`) },
  );
}

const clean = (s: string) => s.replace(/\0/g, '');

describe('every input parser, in process', () => {
  test('accepts a value or throws one InputError naming its input (never anything else)', () => {
    let cases = 0;
    let errors = 0;
    for (const action of ACTIONS) {
      const schema = schemas.get(action)!;
      for (const [name, field] of Object.entries(schema)) {
        fc.assert(
          fc.property(valuesFor(field), (value) => {
            const raw = clean(value).trim();
            if (!raw) return;
            cases++;
            try {
              field.parse(raw, name);
            } catch (error) {
              errors++;
              expect(isExpectedError(error)).toBe(true);
              const message = (error as Error).message;
              expect(message.startsWith(`Input '${name}`)).toBe(true);
              if (field.secret) expect(message).not.toContain(SECRET_MARK);
            }
          }),
          { numRuns: 60, seed: 1313 },
        );
      }
    }
    console.log(`input parsers: ${cases} values tried, ${errors} clean InputErrors, 0 other exceptions`);
  });
});

const haveDatabase = postgresAvailable();

(haveDatabase ? describe : describe.skip)('the built actions under hostile inputs', () => {
  let sim: KubeSim;
  let server: PostgresServer;
  let slack: LocalSlack;
  let github: LocalGitHub;
  let workspace: string;
  let databaseUrl: string;
  /** A copy of the actions and the dist/ just built, so a rebuild by another run cannot pull chunks away mid-test. */
  let root: string;
  const DB_PASSWORD = 'Pr0pDbPassw0rd';
  const SLACK_TOKEN = 'xoxb-property-token-0123456789';
  const GITHUB_TOKEN = 'ghs_propertyGithubToken0123456789';

  beforeAll(async () => {
    [sim, server, slack, github] = await Promise.all([
      startKubeSim({ timeScale: 50, namespaces: ['props'] }),
      startPostgres(),
      LocalSlack.start({ tokens: [SLACK_TOKEN] }),
      LocalGitHub.start({ tokens: [GITHUB_TOKEN] }),
    ]);
    workspace = mkdtempSync(join(tmpdir(), 'input-properties-'));
    root = mkdtempSync(join(tmpdir(), 'input-properties-root-'));
    for (const action of ACTIONS) {
      expect(existsSync(join(REPO_ROOT, 'dist', `${action}.js`))).toBe(true);
      cpSync(join(REPO_ROOT, action, 'action.yml'), join(root, action, 'action.yml'), { recursive: true });
    }
    cpSync(join(REPO_ROOT, 'dist'), join(root, 'dist'), { recursive: true });
    mkdirSync(join(workspace, 'migrations'));
    writeFileSync(
      join(workspace, 'migrations', '1_items.sql'),
      '-- migrate:up\nCREATE TABLE prop_items (id int);\n-- migrate:down\nDROP TABLE prop_items;\n',
    );
    writeFileSync(
      join(workspace, 'app.yml'),
      [
        'apiVersion: apps/v1',
        'kind: Deployment',
        'metadata: { name: shop }',
        'spec:',
        '  replicas: 1',
        '  selector: { matchLabels: { app: shop } }',
        '  template:',
        '    metadata: { labels: { app: shop } }',
        '    spec: { containers: [{ name: web, image: registry.local/shop:v1 }] }',
        '',
      ].join('\n'),
    );
    databaseUrl = (await server.createDatabase('props')).replace('postgres@', `postgres:${DB_PASSWORD}@`);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([sim?.close(), server?.stop(), slack?.close(), github?.close()]);
    for (const dir of [workspace, root]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function clusterVersion(): Promise<string> {
    const res = await fetch(`${sim.url}/api/v1/namespaces`, {
      headers: { authorization: `Bearer ${sim.token}` },
    });
    return ((await res.json()) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
  }

  async function databaseState(): Promise<string> {
    const client = new pg.Client({ connectionString: databaseUrl });
    client.on('error', () => {});
    await client.connect();
    try {
      const { rows } = await client.query<{ state: string }>(
        `SELECT coalesce(string_agg(n.nspname || '.' || c.relname, ',' ORDER BY 1), '') AS state
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
            AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'`,
      );
      const schemasNow = await client.query<{ n: string }>(
        "SELECT string_agg(nspname, ',' ORDER BY 1) AS n FROM pg_namespace WHERE nspname NOT LIKE 'pg_%'",
      );
      return `${rows[0]!.state}|${schemasNow.rows[0]!.n}`;
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** What a step sees besides the input under test: a setup it could run with, changing nothing by itself. */
  function baseInputs(action: string): Record<string, string> {
    const kube = { kubeconfig: sim.kubeconfigPath, namespace: 'props' };
    switch (action) {
      case 'deploy-env':
        return {
          ...kube,
          environment: 'dev',
          manifests: 'app.yml',
          'dry-run': 'true',
          'github-deployment': 'false',
        };
      case 'run-migrations':
        return { command: 'status', 'database-url': databaseUrl };
      case 'health-gate':
        return { checks: '- { name: none, url: "http://127.0.0.1:1/" }', count: '1' };
      case 'canary-shift':
        return {
          ...kube,
          deployment: 'shop',
          image: 'registry.local/shop:v2',
          checks: '- { name: pods, workload: deployment/shop }',
        };
      case 'blue-green-switch':
        return { ...kube, app: 'shop', mode: 'switch' };
      case 'notify':
        return {
          event: 'started',
          'slack-token': SLACK_TOKEN,
          channel: 'deploys',
          'slack-api-url': slack.apiUrl,
          'github-token': GITHUB_TOKEN,
        };
      default:
        return {};
    }
  }

  test('the change counters see a change: a real migration and a real deploy', async () => {
    const db = await databaseState();
    const up = await runBuiltAction('run-migrations', {
      root,
      inputs: { command: 'up', 'database-url': databaseUrl },
      cwd: workspace,
      env: { PATH: `${server.binaries.binDir}${delimiter}${process.env.PATH ?? ''}` },
    });
    expect(up.exitCode).toBe(0);
    expect(await databaseState()).not.toBe(db);
    const cluster = await clusterVersion();
    const deploy = await runBuiltAction('deploy-env', {
      root,
      inputs: { ...baseInputs('deploy-env'), 'dry-run': 'false', timeout: '60s' },
      cwd: workspace,
    });
    expect(deploy.annotations.filter((a) => a.level === 'error')).toEqual([]);
    expect(await clusterVersion()).not.toBe(cluster);
  }, 90_000);

  const tally = { cases: 0, inputErrors: 0, otherFailures: 0, passed: 0, stacks: 0, mutations: 0, leaks: 0 };

  test('no stack trace, at most one ::error::, no leak, and no change on a bad input', async () => {
    const arbitrary = fc.constantFrom(...ACTIONS).chain((action) =>
      fc
        // Inputs action.yml declares and the schema reads (metadata.test.ts holds the two equal).
        .constantFrom(...declared.get(action)!.filter((name) => name in schemas.get(action)!))
        .chain((input) =>
          valuesFor(schemas.get(action)![input]!).map((value) => ({ action, input, value: clean(value) })),
        ),
    );
    await fc.assert(
      fc.asyncProperty(arbitrary, async ({ action, input, value }) => {
        const inputs = { ...baseInputs(action), [input]: value };
        const before = {
          cluster: await clusterVersion(),
          database: await databaseState(),
          slack: slack.calls.length,
          github: github.requests.filter((r) => r.method !== 'GET').length,
        };
        const step: StepResult = await runBuiltAction(action, {
          root,
          inputs,
          cwd: workspace,
          timeoutMs: 8000,
          env: {
            HOME: '/nonexistent-home',
            PATH: `${server.binaries.binDir}${delimiter}${process.env.PATH ?? ''}`,
          },
          github: { apiUrl: github.url, token: GITHUB_TOKEN },
        });
        const after = {
          cluster: await clusterVersion(),
          database: await databaseState(),
          slack: slack.calls.length,
          github: github.requests.filter((r) => r.method !== 'GET').length,
        };
        const errors = step.annotations.filter((a) => a.level === 'error');
        const inputError = errors.length === 1 && /^Input '/.test(errors[0]!.message);
        const changed = JSON.stringify(before) !== JSON.stringify(after);
        const secrets = [DB_PASSWORD, SLACK_TOKEN, GITHUB_TOKEN, sim.token];
        for (const m of value.matchAll(new RegExp(`${SECRET_MARK}[^\\s:@/]*`, 'g')))
          if (schemas.get(action)![input]!.secret || schemas.get(action)![input]!.kind === 'url')
            secrets.push(m[0]);
        const leaked = secrets.flatMap((s) =>
          findLeaks(step, s).map((place) => `${s.slice(0, 6)}… in ${place}`),
        );

        tally.cases++;
        if (inputError) tally.inputErrors++;
        else if (step.exitCode === 0) tally.passed++;
        else tally.otherFailures++;
        if (STACK.test(step.stdout + step.stderr)) tally.stacks++;
        if (inputError && changed) tally.mutations++;
        if (leaked.length) tally.leaks++;

        const what = `${action} ${input}=${JSON.stringify(value.slice(0, 80))}`;
        expect([what, step.stdout.match(STACK)?.[0] ?? step.stderr.match(STACK)?.[0]]).toEqual([
          what,
          undefined,
        ]);
        expect([what, errors.length <= 1]).toEqual([what, true]);
        expect([what, leaked]).toEqual([what, []]);
        expect([what, inputError && changed ? { before, after } : 'unchanged or valid']).toEqual([
          what,
          'unchanged or valid',
        ]);
      }),
      { numRuns: 80, seed: 1313, endOnFailure: true },
    );
    console.log(
      `built actions: ${tally.cases} hostile runs, ${tally.inputErrors} clean input errors, ${tally.otherFailures} other clean failures, ${tally.passed} passed, ${tally.stacks} stack traces, ${tally.mutations} mutations on bad input, ${tally.leaks} leaks`,
    );
  }, 180_000);
});
