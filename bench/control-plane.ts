/**
 * The real control plane: `node bench/control-plane.ts [rollouts]` (default 5). Figures only.
 *
 * (a) Warm build (build.sh with its cache filled) and cluster start to "pods can be created":
 *     the real control plane (etcd, kube-apiserver, controller-manager, scheduler, KWOK) against
 *     kube-sim, 3 starts each. A cold build is `PIPELINE_CONTROL_PLANE_CACHE=$(mktemp -d)
 *     GOCACHE=$(mktemp -d) tooling/control-plane/build.sh`, timed by hand (minutes, not seconds).
 * (b) Rollout finished → waiter returned on the real cluster: a watch of our own records when the
 *     Deployment first meets kubectl's "successfully rolled out" rule; the gap to each waiter's
 *     return is measured for the deploy-env action run as the runner runs it (a new Node process,
 *     apply + wait), our engine's waitForDeployment in process, and `kubectl rollout status`,
 *     interleaved round by round on three Deployments of 5 replicas.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { silentLogger } from '../packages/core/index.ts';
import { KubeClient } from '../packages/kube/client.ts';
import { type DeploymentObject, waitForDeployment } from '../packages/kube/rollout.ts';
import { deploymentRolloutStatus } from '../packages/kube/status-viewers.ts';
import { type Cluster, startCluster } from '../tooling/cluster.ts';
import { LocalGitHub } from '../tooling/local-services/local-github.ts';
import { runBuiltAction } from '../tooling/runners/action-runner.ts';

const ROLLOUTS = Math.max(1, Math.min(30, Number(process.argv[2] ?? 5)));
const NS = 'bench';
const run = promisify(execFile);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);

async function timeStart(kind: 'real' | 'kube-sim'): Promise<number> {
  const t = performance.now();
  const c = await startCluster({ kind, namespaces: [NS] });
  const took = performance.now() - t;
  await c.close();
  return took;
}

/** Resolves with the time the Deployment first meets kubectl's rule for `image`, seen by a watch. */
function whenRolledOut(cluster: Cluster, name: string, image: string, fromVersion: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${cluster.httpsUrl}/apis/apps/v1/namespaces/${NS}/deployments?watch=true&fieldSelector=metadata.name%3D${name}&resourceVersion=${fromVersion}`,
      { ca: cluster.caCert, headers: { authorization: `Bearer ${cluster.token}` } },
      (res) => {
        let buf = '';
        res.setEncoding('utf8').on('data', (chunk: string) => {
          buf += chunk;
          for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            const d = (JSON.parse(line) as { object: DeploymentObject }).object;
            const img = (d.spec as { template?: { spec?: { containers?: { image?: string }[] } } })?.template
              ?.spec?.containers?.[0]?.image;
            if (img === image && deploymentRolloutStatus(d).done) {
              resolve(performance.now());
              req.destroy();
            }
          }
        });
      },
    );
    req.on('error', (e) => {
      if (!(e as NodeJS.ErrnoException).code?.includes('ECONNRESET')) reject(e);
    });
    req.end();
  });
}

function manifest(name: string, image: string): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}, labels: { app: ${name} } }
spec:
  replicas: 5
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec: { containers: [{ name: web, image: ${image} }] }
`;
}

const buildStart = performance.now();
await run('tooling/control-plane/build.sh');
const warmBuild = performance.now() - buildStart;
const starts = { real: [] as number[], 'kube-sim': [] as number[] };
for (let i = 0; i < 3; i++) {
  starts.real.push(await timeStart('real'));
  starts['kube-sim'].push(await timeStart('kube-sim'));
}
console.log(`(a) warm build.sh: ${fmt(warmBuild)}`);
console.log(
  `    cluster start, median of 3: real ${fmt(median(starts.real))}, kube-sim ${fmt(median(starts['kube-sim']))} (${(median(starts.real) / median(starts['kube-sim'])).toFixed(0)}×)`,
);

const cluster = await startCluster({
  kind: 'real',
  namespaces: [NS],
  images: [{ pattern: 'registry.local/bench:*', startupMs: 2500, readyMs: 500 }],
});
const github = await LocalGitHub.start();
const work = mkdtempSync(join(tmpdir(), 'bench-control-plane-'));
const client = KubeClient.load({ kubeconfig: cluster.kubeconfigPath, logger: silentLogger });
try {
  type Waiter = 'deploy-env action' | 'waitForDeployment' | 'kubectl rollout status';
  const waiters: Waiter[] = ['deploy-env action', 'waitForDeployment', 'kubectl rollout status'];
  const names = new Map(waiters.map((w, i) => [w, `app-${i}`]));
  for (const name of names.values()) {
    writeFileSync(join(work, `${name}.yaml`), manifest(name, 'registry.local/bench:v0'));
    await run('kubectl', ['apply', '-n', NS, '-f', join(work, `${name}.yaml`)], {
      env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath },
    });
    await run('kubectl', ['rollout', 'status', '-n', NS, `deployment/${name}`, '--timeout=120s'], {
      env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath },
    });
  }
  const gaps = new Map<Waiter, number[]>(waiters.map((w) => [w, []]));
  for (let round = 1; round <= ROLLOUTS; round++) {
    for (const waiter of waiters) {
      const name = names.get(waiter)!;
      const image = `registry.local/bench:v${round}`;
      const current = await client.json<DeploymentObject>(
        'GET',
        `/apis/apps/v1/namespaces/${NS}/deployments/${name}`,
      );
      const done = whenRolledOut(cluster, name, image, current.metadata.resourceVersion!);
      let returned: number;
      if (waiter === 'deploy-env action') {
        writeFileSync(join(work, `${name}.yaml`), manifest(name, image));
        const step = await runBuiltAction('deploy-env', {
          inputs: {
            kubeconfig: cluster.kubeconfigPath,
            namespace: NS,
            environment: 'bench',
            app: name,
            manifests: join(work, `${name}.yaml`),
            lock: 'false',
          },
          github: { apiUrl: github.url },
          cwd: work,
          timeoutMs: 120_000,
        });
        returned = performance.now();
        if (step.exitCode !== 0) throw new Error(`deploy-env failed: ${step.stdout.slice(-2000)}`);
      } else {
        await client.json('PATCH', `/apis/apps/v1/namespaces/${NS}/deployments/${name}`, {
          body: JSON.stringify({ spec: { template: { spec: { containers: [{ name: 'web', image }] } } } }),
          contentType: 'application/strategic-merge-patch+json',
        });
        if (waiter === 'waitForDeployment') {
          const outcome = await waitForDeployment({
            client,
            namespace: NS,
            name,
            deadline: Date.now() + 120_000,
            stuckGraceMs: 60_000,
            logger: silentLogger,
          });
          returned = performance.now();
          if (!outcome.ok) throw new Error(outcome.message);
        } else {
          await new Promise<void>((resolve, reject) => {
            const child = spawn(
              'kubectl',
              ['rollout', 'status', '-n', NS, `deployment/${name}`, '--timeout=120s'],
              {
                env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath },
                stdio: 'ignore',
              },
            );
            child.on('exit', (code) =>
              code === 0 ? resolve() : reject(new Error(`kubectl exited ${code}`)),
            );
          });
          returned = performance.now();
        }
      }
      gaps.get(waiter)!.push(returned - (await done));
    }
  }
  console.log(
    `(b) real cluster, rollout finished (seen by a watch) → waiter returned, median of ${ROLLOUTS}:`,
  );
  const kubectlGap = median(gaps.get('kubectl rollout status')!);
  for (const w of waiters) {
    const m = median(gaps.get(w)!);
    console.log(`    ${w.padEnd(24)} ${fmt(m).padStart(8)}  (${(m / kubectlGap).toFixed(2)}× kubectl)`);
  }
} finally {
  await github.close();
  await cluster.close();
  rmSync(work, { recursive: true, force: true });
}
