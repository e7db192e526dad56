import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { actionDirs } from '../../scripts/action-docs.ts';
import {
  type PostgresServer,
  postgresAvailable,
  startPostgres,
} from '../../tooling/local-services/postgres.ts';
import {
  REPO_ROOT,
  readActionDefinition,
  runBuiltAction,
  type StepResult,
} from '../../tooling/runners/action-runner.ts';
import { kubectlFor, useKubeSim, useWorkDir } from '../../tooling/test-support/fixtures.ts';

/**
 * Every input that names a file or a directory, of every action, reads a valid one through the
 * built bundle (health-gate's checks-file never could: the shipped chunk had no named YAML export,
 * and only a missing file was tested). The list of such inputs comes from the action.yml files, so
 * a new one without a case here fails the first test.
 */

// Every action of the repository, so a new one is covered the day it lands.
const ACTIONS = actionDirs().map((dir) => basename(dir));
const FILE_TYPED = /file path|[Pp]ath (to|of) |[Dd]irectory|files, directories|^Kustomize overlay/;

const run = promisify(execFile);
const ws = useWorkDir('file-inputs-');

const write = (path: string, text: string) => {
  mkdirSync(dirname(join(ws, path)), { recursive: true });
  writeFileSync(join(ws, path), text);
};

const APP = `apiVersion: apps/v1
kind: Deployment
metadata: { name: shop, labels: { app: shop } }
spec:
  replicas: 2
  selector: { matchLabels: { app: shop } }
  template:
    metadata: { labels: { app: shop } }
    spec: { containers: [{ name: web, image: registry.local/shop:v1, ports: [{ containerPort: 8080 }] }] }
---
apiVersion: v1
kind: Service
metadata: { name: shop }
spec:
  selector: { app: shop }
  ports: [{ port: 80, targetPort: 8080 }]
`;

const NAMESPACES = ['files-gate', 'files-dm', 'files-dk', 'files-cm', 'files-ck', 'files-bm', 'files-bk'];

const sim = useKubeSim({ timeScale: 50, namespaces: NAMESPACES });
const { kubectlJson } = kubectlFor(sim, ws);

beforeAll(() => {
  copyFileSync(sim.kubeconfigPath, join(ws, 'kubeconfig.yml'));
  write('k8s/plain/app.yml', APP);
  write('k8s/base/app.yml', APP);
  write('k8s/base/kustomization.yaml', 'resources: [app.yml]\n');
  write('k8s/staging/kustomization.yaml', 'resources: [../base]\ncommonLabels: { tier: web }\n');
});

const errors = (step: StepResult) =>
  step.annotations.filter((a) => a.level === 'error').map((a) => a.message);

type Deployment = {
  metadata: { labels?: Record<string, string> };
  spec: { template: { spec: { containers: { image: string }[] } } };
};
const imageOf = (d: Deployment) => d.spec.template.spec.containers[0]!.image;

function step(action: string, inputs: Record<string, string>, env: Record<string, string> = {}) {
  return runBuiltAction(action, {
    inputs,
    cwd: ws,
    env: { HOME: '/nonexistent-home', ...env },
    timeoutMs: 120_000,
  });
}

async function seedDeployment(namespace: string): Promise<void> {
  const deployed = await step('deploy-env', {
    environment: 'dev',
    namespace,
    manifests: 'k8s/plain/app.yml',
    kubeconfig: 'kubeconfig.yml',
    'github-deployment': 'false',
  });
  expect(errors(deployed)).toEqual([]);
}

/** One case per file-typed input; a case may cover several inputs of one step. */
const CASES: { covers: string[]; run: () => Promise<void> }[] = [
  {
    covers: ['health-gate/checks-file', 'health-gate/kubeconfig'],
    run: async () => {
      await seedDeployment('files-gate');
      write(
        'checks/gate.yml',
        '- { name: pods, type: kubernetes, workload: deployment/shop, namespace: files-gate }\n',
      );
      const s = await step('health-gate', { 'checks-file': 'checks/gate.yml', kubeconfig: 'kubeconfig.yml' });
      expect(errors(s)).toEqual([]);
      expect(s.outputs.verdict).toBe('passed');
      expect(JSON.parse(s.outputs.evidence!).checks[0].name).toBe('pods');
    },
  },
  {
    covers: ['deploy-env/manifests', 'deploy-env/kubeconfig'],
    run: async () => {
      const s = await step('deploy-env', {
        environment: 'dev',
        namespace: 'files-dm',
        manifests: 'k8s/plain/app.yml',
        kubeconfig: 'kubeconfig.yml',
        image: 'registry.local/shop:v7',
        'github-deployment': 'false',
      });
      expect(errors(s)).toEqual([]);
      expect(imageOf(await kubectlJson<Deployment>('get', 'deployment/shop', '-n', 'files-dm'))).toBe(
        'registry.local/shop:v7',
      );
    },
  },
  {
    covers: ['deploy-env/kustomize'],
    run: async () => {
      const s = await step('deploy-env', {
        environment: 'staging',
        namespace: 'files-dk',
        kustomize: 'k8s/staging',
        kubeconfig: 'kubeconfig.yml',
        'github-deployment': 'false',
      });
      expect(errors(s)).toEqual([]);
      const d = await kubectlJson<Deployment>('get', 'deployment/shop', '-n', 'files-dk');
      expect(d.metadata.labels?.tier).toBe('web');
    },
  },
  ...(['manifests', 'kustomize'] as const).map((kind) => ({
    covers: [`canary-shift/${kind}`, ...(kind === 'manifests' ? ['canary-shift/kubeconfig'] : [])],
    run: async () => {
      const namespace = kind === 'manifests' ? 'files-cm' : 'files-ck';
      const s = await step('canary-shift', {
        deployment: 'shop',
        namespace,
        image: 'registry.local/shop:v2',
        ...(kind === 'manifests' ? { manifests: 'k8s/plain/app.yml' } : { kustomize: 'k8s/staging' }),
        checks: `- { name: pods, type: kubernetes, workload: deployment/shop, namespace: ${namespace} }`,
        kubeconfig: 'kubeconfig.yml',
      });
      expect(errors(s)).toEqual([]);
      expect(imageOf(await kubectlJson<Deployment>('get', 'deployment/shop', '-n', namespace))).toBe(
        'registry.local/shop:v2',
      );
    },
  })),
  ...(['manifests', 'kustomize'] as const).map((kind) => ({
    covers: [`blue-green-switch/${kind}`, ...(kind === 'manifests' ? ['blue-green-switch/kubeconfig'] : [])],
    run: async () => {
      const namespace = kind === 'manifests' ? 'files-bm' : 'files-bk';
      const s = await step('blue-green-switch', {
        app: 'shop',
        namespace,
        image: 'registry.local/shop:v3',
        ...(kind === 'manifests' ? { manifests: 'k8s/plain/app.yml' } : { kustomize: 'k8s/staging' }),
        'scale-down-delay': '0s',
        kubeconfig: 'kubeconfig.yml',
      });
      expect(errors(s)).toEqual([]);
      expect(imageOf(await kubectlJson<Deployment>('get', 'deployment/shop-blue', '-n', namespace))).toBe(
        'registry.local/shop:v3',
      );
    },
  })),
];

const haveDatabase = postgresAvailable() && hasOpenssl();
function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

let tlsServer: PostgresServer | undefined;
afterAll(async () => {
  await tlsServer?.stop();
});

/** A CA and a certificate for localhost, so verify-full can only pass by reading the sslrootcert file. */
async function tlsPostgres(): Promise<{ server: PostgresServer; caFile: string }> {
  const dir = join(ws, 'tls');
  mkdirSync(dir, { recursive: true });
  const openssl = (args: string[]) => run('openssl', args, { cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=file-inputs CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  writeFileSync(
    join(dir, 'ext.cnf'),
    'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
  );
  await openssl([
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.crt',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
  ]);
  tlsServer = await startPostgres({
    tls: {
      certPem: readFileSync(join(dir, 'server.crt'), 'utf8'),
      keyPem: readFileSync(join(dir, 'server.key'), 'utf8'),
    },
  });
  return { server: tlsServer, caFile: 'tls/ca.crt' };
}

if (haveDatabase) {
  CASES.push({
    covers: ['run-migrations/dir', 'run-migrations/checks-dir', 'run-migrations/sslrootcert'],
    run: async () => {
      const { server, caFile } = await tlsPostgres();
      write(
        'db/migrations/1_items.sql',
        '-- migrate:up\nCREATE TABLE items (id int PRIMARY KEY);\n-- migrate:down\nDROP TABLE items;\n',
      );
      write('db/checks/no_negative_ids.sql', 'SELECT id FROM items WHERE id < 0;\n');
      const url = (await server.createDatabase('files')).replace('@127.0.0.1:', '@localhost:');
      const s = await step(
        'run-migrations',
        {
          command: 'up',
          'database-url': url,
          dir: 'db/migrations',
          'checks-dir': 'db/checks',
          sslmode: 'verify-full',
          sslrootcert: caFile,
        },
        { PATH: `${server.binaries.binDir}:${process.env.PATH ?? ''}` },
      );
      expect(errors(s)).toEqual([]);
      expect(s.outputs.applied).toContain('1');
      const result = JSON.parse(s.outputs.result!) as { checks?: { name: string; ok?: boolean }[] };
      expect(JSON.stringify(result.checks)).toContain('no_negative_ids');
    },
  });
}

describe('file-typed inputs read a valid file through the built bundle', () => {
  test('every file-typed input of every action has a case here', () => {
    const declared = ACTIONS.flatMap((action) =>
      Object.entries(readActionDefinition(join(REPO_ROOT, action)).inputs)
        .filter(([, spec]) => FILE_TYPED.test(spec.description ?? ''))
        .map(([name]) => `${action}/${name}`),
    );
    const covered = CASES.flatMap((c) => c.covers);
    const withoutDatabase = haveDatabase
      ? []
      : ['run-migrations/dir', 'run-migrations/checks-dir', 'run-migrations/sslrootcert'];
    expect([...covered, ...withoutDatabase].sort()).toEqual(declared.sort());
  });

  test.each(CASES.map((c) => [c.covers.join(' + '), c] as const))(
    '%s',
    async (_name, c) => {
      await c.run();
    },
    180_000,
  );
});
