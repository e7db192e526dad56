import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, test } from '@jest/globals';
import { findLeaks, runBuiltAction, type StepResult } from '../../tooling/runners/action-runner.ts';
import { deploymentYaml, kubectlFor, useKubeSim, useWorkDir } from '../../tooling/test-support/fixtures.ts';

// The defects an independent review of issue #13 found in the built actions, one by one.

const run = promisify(execFile);
const sim = useKubeSim({
  timeScale: 40,
  namespaces: ['r-lease', 'r-conflict', 'r-canary', 'r-kc', 'r-kustomize'],
});
const work = useWorkDir('hardening-review-');
const { kubectl } = kubectlFor(sim, work);

beforeAll(() => {
  mkdirSync(join(work, 'k8s'), { recursive: true });
  writeFileSync(join(work, 'k8s', 'app.yaml'), deploymentYaml({ port: 8080 }));
});

const errors = (step: StepResult) =>
  step.annotations.filter((a) => a.level === 'error').map((a) => a.message);
const hasStack = (step: StepResult) => /\n\s+at .+:\d+:\d+\)?/.test(step.stdout + step.stderr);

function deploy(inputs: Record<string, string>, timeoutMs = 60_000): Promise<StepResult> {
  return runBuiltAction('deploy-env', {
    inputs: {
      kubeconfig: sim.kubeconfigPath,
      manifests: 'k8s/app.yaml',
      'github-deployment': 'false',
      timeout: '60s',
      ...inputs,
    },
    cwd: work,
    env: { GITHUB_WORKSPACE: work },
    timeoutMs,
  });
}

describe('D1: Kubernetes names are at most 63 characters, and the lock never spins', () => {
  test.each([
    ['deploy-env', 'environment', { environment: 'e'.repeat(64), app: 'shop', namespace: 'r-lease' }],
    ['deploy-env', 'app', { environment: 'dev', app: 'a'.repeat(64), namespace: 'r-lease' }],
    ['deploy-env', 'namespace', { environment: 'dev', app: 'shop', namespace: 'n'.repeat(64) }],
  ])('%s refuses a 64-character %s before touching the cluster', async (_action, input, inputs) => {
    const step = await deploy(inputs);
    expect(step.exitCode).not.toBe(0);
    expect(errors(step)).toHaveLength(1);
    expect(errors(step)[0]).toContain(`Input '${input}'`);
    expect(errors(step)[0]).toContain('64 characters long');
    expect(errors(step)[0]).toContain('at most 63 characters');
    expect(hasStack(step)).toBe(false);
    expect(sim.peek('Deployment', 'r-lease', 'shop')).toBeUndefined();
    expect(sim.peek('Lease', 'r-lease', 'pipeline-rollout-shop')).toBeUndefined();
  });

  test('canary-shift and blue-green-switch leave room for the names they derive', async () => {
    const canary = await runBuiltAction('canary-shift', {
      inputs: { kubeconfig: sim.kubeconfigPath, namespace: 'r-canary', deployment: 'd'.repeat(57) },
      cwd: work,
    });
    expect(errors(canary)).toEqual([expect.stringContaining("Input 'deployment'")]);
    expect(errors(canary)[0]).toContain('at most 56 characters (its canary Service is <deployment>-canary)');
    const blueGreen = await runBuiltAction('blue-green-switch', {
      inputs: { kubeconfig: sim.kubeconfigPath, namespace: 'r-canary', app: 'b'.repeat(56) },
      cwd: work,
    });
    expect(errors(blueGreen)).toEqual([expect.stringContaining("Input 'app'")]);
    expect(errors(blueGreen)[0]).toContain('at most 55 characters');
    const gate = await runBuiltAction('health-gate', {
      inputs: { checks: '- { name: x, url: "http://127.0.0.1:1/" }', count: '1', namespace: 'n'.repeat(64) },
    });
    expect(errors(gate)).toEqual([expect.stringContaining("Input 'namespace'")]);
  });

  test('a Lease the API server refuses (422) fails the deploy at once, not in a loop', async () => {
    sim.setFaults({ errorRate: 1, statuses: [422], match: { resource: 'leases', verb: 'create' } });
    try {
      const started = Date.now();
      const step = await deploy({ environment: 'dev', app: 'shop', namespace: 'r-lease' }, 40_000);
      expect(step.exitCode).not.toBe(0);
      expect(errors(step)).toEqual([
        expect.stringContaining('refused the deploy lock r-lease/pipeline-rollout-shop'),
      ]);
      // lock-timeout is 10m by default: an answer in seconds means the 422 was not retried as a conflict.
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      sim.setFaults({});
    }
    expect(sim.peek('Deployment', 'r-lease', 'shop')).toBeUndefined();
  });

  test('a Lease that keeps conflicting (409) is retried with backoff and gives up at lock-timeout', async () => {
    sim.setFaults({ errorRate: 1, statuses: [409], match: { resource: 'leases', verb: 'create' } });
    try {
      const started = Date.now();
      const step = await deploy(
        { environment: 'dev', app: 'shop', namespace: 'r-conflict', 'lock-timeout': '3s' },
        40_000,
      );
      const took = Date.now() - started;
      expect(step.exitCode).not.toBe(0);
      expect(errors(step)).toEqual([expect.stringContaining('kept changing under us')]);
      expect(took).toBeGreaterThan(3000);
      expect(took).toBeLessThan(20_000);
    } finally {
      sim.setFaults({});
    }
    expect(sim.peek('Deployment', 'r-conflict', 'shop')).toBeUndefined();
  });
});

describe('D2: a check that was never measured never passes', () => {
  test.each(['1', '3'])(
    'health-gate with count %s and an unreachable URL fails, naming the check',
    async (count) => {
      const step = await runBuiltAction('health-gate', {
        inputs: { checks: '- { name: api, url: "http://127.0.0.1:1/health" }', count, interval: '100ms' },
      });
      expect(step.exitCode).not.toBe(0);
      expect(step.outputs.verdict).toBe('failed');
      expect(step.outputs['decided-by']).toBe('api');
      expect(errors(step)).toEqual([
        expect.stringMatching(
          /api was never measured \(\d attempt\(s\).*last error: request failed: fetch failed \(.+\)/,
        ),
      ]);
    },
  );

  test('an errored measurement amid successes still passes (consecutive-error limit)', async () => {
    const { listenLoopback, closeServer } = await import('../../tooling/local-services/http.ts');
    let n = 0;
    const { server, url } = await listenLoopback((_req, res) => {
      n++;
      if (n === 2) {
        res.destroy();
        return;
      }
      res.writeHead(200);
      res.end('ok');
    });
    try {
      const step = await runBuiltAction('health-gate', {
        inputs: { checks: `- { name: api, url: "${url}/health" }`, count: '3', interval: '100ms' },
      });
      expect(errors(step)).toEqual([]);
      expect(step.outputs.verdict).toBe('passed');
    } finally {
      await closeServer(server);
    }
  });

  test('a canary step whose every analysis errors is aborted, not promoted', async () => {
    writeFileSync(
      join(work, 'service.yaml'),
      'apiVersion: v1\nkind: Service\nmetadata: { name: shop }\nspec:\n  selector: { app: shop }\n  ports: [{ port: 80, targetPort: 8080 }]\n',
    );
    await kubectl(
      'apply',
      '-n',
      'r-canary',
      '-f',
      join(work, 'k8s', 'app.yaml'),
      '-f',
      join(work, 'service.yaml'),
    );
    await kubectl('rollout', 'status', 'deployment/shop', '-n', 'r-canary', '--timeout=60s');
    const step = await runBuiltAction('canary-shift', {
      inputs: {
        kubeconfig: sim.kubeconfigPath,
        namespace: 'r-canary',
        deployment: 'shop',
        image: 'registry.local/shop:v2',
        steps: '50,100',
        'analysis-interval': '100ms',
        'fail-fast-after': '2s',
        timeout: '60s',
        checks: '- { name: unreachable, url: "http://127.0.0.1:1/health" }',
      },
      cwd: work,
      timeoutMs: 120_000,
    });
    expect(step.exitCode).not.toBe(0);
    expect(errors(step).join('\n')).toContain('unreachable was never measured');
    const stable = JSON.parse(await kubectl('get', 'deployment/shop', '-n', 'r-canary', '-o', 'json')) as {
      spec: { template: { spec: { containers: { image: string }[] } } };
    };
    expect(stable.spec.template.spec.containers[0]!.image).toBe('registry.local/shop:v1');
  });
});

describe('D5: credentials in health-check URLs', () => {
  test.each(['token', 'access_token', 'api_key', 'key', 'sig', 'signature', 'password'])(
    'a %s query parameter is redacted in the log, summary and evidence',
    async (param) => {
      const { listenLoopback, closeServer } = await import('../../tooling/local-services/http.ts');
      const { server, url } = await listenLoopback((_req, res) => {
        res.writeHead(200);
        res.end('ok');
      });
      const secret = `q5ecr3t-${param}-value`;
      try {
        const step = await runBuiltAction('health-gate', {
          inputs: {
            checks: `- { name: api, url: "${url}/health?region=eu&${param}=${secret}" }`,
            count: '1',
          },
        });
        expect(errors(step)).toEqual([]);
        expect(step.outputs.verdict).toBe('passed');
        expect(step.summary.replaceAll('\\_', '_')).toContain(`${param}=***`);
        expect(step.summary).toContain('region=eu');
        expect(findLeaks(step, secret)).toEqual([]);
      } finally {
        await closeServer(server);
      }
    },
  );

  test.each([
    [{ 'prometheus-token': 'pr0m-t0ken-value' }],
    [{ 'prometheus-username': 'reader', 'prometheus-password': 'pr0m-passw0rd' }],
  ])('a credential for plain-http Prometheus on another host is refused (%o)', async (auth) => {
    const step = await runBuiltAction('health-gate', {
      inputs: {
        checks: '- { name: errors, query: "up", condition: "> 0" }',
        'prometheus-url': 'http://prometheus.example.invalid:9090',
        count: '1',
        ...auth,
      },
    });
    expect(step.exitCode).not.toBe(0);
    expect(errors(step)).toEqual([
      expect.stringContaining('is plain http to prometheus.example.invalid while a credential is given'),
    ]);
    expect(hasStack(step)).toBe(false);
  });
});

const OLD_NODE = '/usr/bin/node';
(existsSync(OLD_NODE) ? describe : describe.skip)('D6: a bundle run by Node < 24 says so in one line', () => {
  test.each([
    'deploy-env',
    'run-migrations',
    'health-gate',
    'canary-shift',
    'blue-green-switch',
    'notify',
    'release-gate',
  ])('%s', async (action) => {
    const bundle = join(import.meta.dirname, '..', '..', 'dist', `${action}.js`);
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(OLD_NODE, [bundle], { env: { PATH: '/usr/bin:/bin' } }, (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
    const { stdout } = await run(OLD_NODE, ['--version']);
    expect(Number(stdout.trim().slice(1).split('.')[0])).toBeLessThan(24);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(
      /^::error::pipeline needs Node 24 or newer; this is Node 2\d\.\d+\.\d+\. Install Node 24 \(nvm install 24, https:\/\/nodejs\.org, or actions\/setup-node with node-version: 24\) and run it again\.\n$/,
    );
  });
});

describe('D3: kubeconfig credentials are masked, and a user that cannot authenticate is one clean error', () => {
  const clusterPart = () => sim.kubeconfig.split('users:')[0]!;
  const context =
    'contexts:\n- name: kube-sim\n  context: { cluster: kube-sim, user: u, namespace: r-kc }\ncurrent-context: kube-sim\n';
  const keyPem = '-----BEGIN PRIVATE KEY-----\nPRIVKEYMATERIALXYZ\n-----END PRIVATE KEY-----\n';
  const certPem = '-----BEGIN CERTIFICATE-----\nMIIBCERTDATA\n-----END CERTIFICATE-----\n';
  const cases: [string, () => string, string[], RegExp][] = [
    [
      'a failing exec plugin whose stderr echoes its env and args',
      () =>
        `${clusterPart()}users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: sh\n      args: ["-c", "echo leaked-arg=$0 env=$MYTOKEN >&2; exit 1", "SECRETARG123456"]\n      env: [{ name: MYTOKEN, value: SECRETENV123456 }]\n      interactiveMode: Never\n${context}`,
      ['SECRETARG123456', 'SECRETENV123456'],
      /^Input 'kubeconfig' has a user \(u\) that cannot authenticate: its exec plugin "sh" failed/,
    ],
    [
      'an oidc auth-provider that cannot refresh',
      () =>
        `${clusterPart()}users:\n- name: u\n  user:\n    auth-provider:\n      name: oidc\n      config: { id-token: not-a-jwt-1d70k3n, client-secret: OIDCCLIENTSECRET1, refresh-token: OIDCREFRESH12345, idp-issuer-url: https://issuer.example.invalid, client-id: x }\n${context}`,
      ['not-a-jwt-1d70k3n', 'OIDCCLIENTSECRET1', 'OIDCREFRESH12345'],
      /^Input 'kubeconfig' has a user \(u\) that cannot authenticate: its auth-provider "oidc" failed/,
    ],
    [
      'a client key that is not a key',
      () =>
        `${clusterPart()}users:\n- name: u\n  user:\n    client-certificate-data: ${Buffer.from(certPem).toString('base64')}\n    client-key-data: ${Buffer.from(keyPem).toString('base64')}\n${context}`,
      ['PRIVKEYMATERIALXYZ', Buffer.from(keyPem).toString('base64')],
      /^Input 'kubeconfig' has a client certificate or key for user u that cannot be used/,
    ],
  ];
  test.each(cases)('%s', async (_label, kubeconfig, secrets, error) => {
    const step = await deploy({
      environment: 'dev',
      app: 'shop',
      namespace: 'r-kc',
      kubeconfig: kubeconfig(),
    });
    expect(step.exitCode).not.toBe(0);
    expect(errors(step)).toEqual([expect.stringMatching(error)]);
    expect(hasStack(step)).toBe(false);
    for (const secret of secrets) {
      expect(findLeaks(step, secret)).toEqual([]);
      expect(step.log).not.toContain(secret);
    }
    expect(sim.peek('Deployment', 'r-kc', 'shop')).toBeUndefined();
  });

  test('a succeeding exec plugin: its token is masked, and the kubeconfig structure is not', async () => {
    const token = sim.token;
    const kubeconfig = `${clusterPart()}users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: sh\n      args: ["-c", "cat $TOKEN_PATH"]\n      env: [{ name: TOKEN_PATH, value: ${join(work, 'exec-credential.json')} }]\n      interactiveMode: Never\n${context}`;
    writeFileSync(
      join(work, 'exec-credential.json'),
      JSON.stringify({
        apiVersion: 'client.authentication.k8s.io/v1beta1',
        kind: 'ExecCredential',
        status: { token },
      }),
    );
    const step = await deploy({ environment: 'dev', app: 'shop', namespace: 'r-kc', kubeconfig });
    expect(errors(step)).toEqual([]);
    expect(step.masks).toContain(token);
    for (const structural of ['apiVersion: v1', 'kind: Config', 'users:', 'contexts:', '- name: u', 'user:'])
      expect(step.masks).not.toContain(structural);
    expect(sim.peek('Deployment', 'r-kc', 'shop')).toBeDefined();
  });

  test('tokenFile is honoured (relative to the kubeconfig file) and its token masked', async () => {
    const dir = join(work, 'kc');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'token'), `${sim.token}\n`);
    writeFileSync(
      join(dir, 'config'),
      `${clusterPart()}users:\n- name: u\n  user:\n    tokenFile: token\n${context}`,
    );
    const step = await deploy({
      environment: 'dev',
      app: 'shop',
      namespace: 'r-kc',
      kubeconfig: join(dir, 'config'),
      'lock-timeout': '30s',
    });
    expect(errors(step)).toEqual([]);
    expect(step.exitCode).toBe(0);
    expect(step.masks).toContain(sim.token);
    expect(findLeaks(step, sim.token)).toEqual([]);
  });
});

describe('D4: the workspace rule covers what kustomize loads', () => {
  const outside = () => {
    const dir = mkdtempSync(join(tmpdir(), 'outside-base-'));
    writeFileSync(join(dir, 'kustomization.yaml'), 'resources: [app.yaml]\n');
    writeFileSync(
      join(dir, 'app.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: from-outside }\ndata: { a: b }\n',
    );
    return dir;
  };
  const overlay = (name: string, kustomization: string, link?: [string, string]) => {
    const root = join(work, name);
    mkdirSync(join(root, 'dev'), { recursive: true });
    writeFileSync(join(root, 'dev', 'kustomization.yaml'), kustomization);
    if (link) symlinkSync(link[1], join(root, link[0]));
    return `${name}/dev`;
  };
  const kustomizeDeploy = (kustomize: string, extra: Record<string, string> = {}) =>
    deploy({ environment: 'dev', app: 'shop', namespace: 'r-kustomize', manifests: '', kustomize, ...extra });

  test('a base that is a symlink out of the workspace is refused before kustomize runs', async () => {
    const base = outside();
    const dir = overlay('k-base', 'resources: [../base]\n', ['base', base]);
    const step = await kustomizeDeploy(dir);
    expect(step.exitCode).not.toBe(0);
    expect(errors(step)).toEqual([
      expect.stringMatching(
        /^Input 'kustomize' names "k-base\/dev\/kustomization.yaml: \.\.\/base", which is a symlink that resolves outside the workspace/,
      ),
    ]);
    expect(sim.peek('ConfigMap', 'r-kustomize', 'from-outside')).toBeUndefined();
    rmSync(base, { recursive: true, force: true });
  });

  test('a patch file two kustomizations down that is a symlink out is refused too', async () => {
    const secretDir = mkdtempSync(join(tmpdir(), 'outside-patch-'));
    writeFileSync(
      join(secretDir, 'patch.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: cm }\ndata: { leaked: yes }\n',
    );
    const root = join(work, 'k-patch');
    mkdirSync(join(root, 'base'), { recursive: true });
    mkdirSync(join(root, 'dev'), { recursive: true });
    writeFileSync(
      join(root, 'base', 'cm.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: cm }\ndata: { a: b }\n',
    );
    symlinkSync(join(secretDir, 'patch.yaml'), join(root, 'base', 'patch.yaml'));
    writeFileSync(
      join(root, 'base', 'kustomization.yaml'),
      'resources: [cm.yaml]\npatches:\n  - path: patch.yaml\n',
    );
    writeFileSync(join(root, 'dev', 'kustomization.yaml'), 'resources: [../base]\n');
    const step = await kustomizeDeploy('k-patch/dev');
    expect(errors(step)).toEqual([expect.stringContaining('k-patch/base/kustomization.yaml: patch.yaml')]);
    expect(sim.peek('ConfigMap', 'r-kustomize', 'cm')).toBeUndefined();
    rmSync(secretDir, { recursive: true, force: true });
  });

  test('with allow-paths-outside-workspace the same overlay is applied', async () => {
    const base = outside();
    const dir = overlay('k-allowed', 'resources: [../base]\n', ['base', base]);
    const step = await kustomizeDeploy(dir, {
      'allow-paths-outside-workspace': 'true',
      'create-namespace': 'true',
    });
    expect(errors(step)).toEqual([]);
    expect(sim.peek('ConfigMap', 'r-kustomize', 'from-outside')).toBeDefined();
    rmSync(base, { recursive: true, force: true });
  });

  test("kustomize's own error loses kubectl's klog prefix", async () => {
    const dir = overlay('k-missing', 'resources: [missing.yaml]\n');
    const step = await kustomizeDeploy(dir);
    expect(errors(step)).toHaveLength(1);
    expect(errors(step)[0]).toContain('kustomize could not render k-missing/dev: ');
    expect(errors(step)[0]).not.toMatch(/[EW]\d{4} \d{2}:\d{2}|run\.go:\d+\]/);
  });
});

describe('minor: one rule for numbers, durations, booleans and webhook URLs', () => {
  const gate = (inputs: Record<string, string>) =>
    runBuiltAction('health-gate', {
      inputs: { checks: '- { name: api, url: "http://127.0.0.1:1/" }', count: '1', ...inputs },
    });

  test.each([
    [
      { interval: '1H' },
      'Input \'interval\' has "1H", which is not a duration (units are lowercase: ms, s, m, h, d)',
    ],
    [{ timeout: '5M' }, 'Input \'timeout\' has "5M", which is not a duration (units are lowercase'],
    [{ count: '007' }, 'Input \'count\' has "007", which has a leading zero'],
    [
      { 'fail-on-inconclusive': 'yes' },
      'Input \'fail-on-inconclusive\' has "yes", which is not a boolean. Accepted: true or false.',
    ],
    [
      { 'fail-on-inconclusive': '1' },
      'Input \'fail-on-inconclusive\' has "1", which is not a boolean. Accepted: true or false.',
    ],
  ])('health-gate refuses %o', async (inputs, message) => {
    const step = await gate(inputs);
    expect(step.exitCode).not.toBe(0);
    expect(errors(step)).toEqual([expect.stringContaining(message)]);
  });

  test('deploy-env refuses replicas 007 and shop=007 before touching the cluster', async () => {
    for (const replicas of ['007', 'shop=007']) {
      const step = await deploy({ environment: 'dev', app: 'shop', namespace: 'r-lease', replicas });
      expect(errors(step)).toEqual([expect.stringContaining("Input 'replicas' has")]);
      expect(errors(step)[0]).toContain('leading zero');
    }
    expect(sim.peek('Deployment', 'r-lease', 'shop')).toBeUndefined();
  });

  test('a webhook URL with user info is refused at validation, never posted', async () => {
    const { listenLoopback, closeServer } = await import('../../tooling/local-services/http.ts');
    let requests = 0;
    const { server, url } = await listenLoopback((_req, res) => {
      requests++;
      res.writeHead(200);
      res.end('ok');
    });
    try {
      const started = Date.now();
      const step = await runBuiltAction('notify', {
        inputs: {
          event: 'custom',
          text: 'hello',
          'slack-webhook-url': `${url.replace('http://', 'http://hook:W3bh00kPassw0rd@')}/services/T0/B0/x`,
        },
      });
      expect(step.exitCode).not.toBe(0);
      expect(errors(step)).toEqual([
        expect.stringContaining("Input 'slack-webhook-url' has a URL with user info"),
      ]);
      expect(requests).toBe(0);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(findLeaks(step, 'W3bh00kPassw0rd')).toEqual([]);
    } finally {
      await closeServer(server);
    }
  });
});
