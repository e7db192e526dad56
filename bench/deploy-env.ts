/**
 * deploy-env against `kubectl` on kube-sim: `node bench/deploy-env.ts [rollouts]` (default 10).
 * Needs `kubectl` on PATH; everything talks to a kube-sim on loopback. Figures only.
 *
 * (a) Rollout-finished latency: the time from the moment the Deployment is done in the store
 *     (observedGeneration caught up, updated = available = status.replicas = spec.replicas, which
 *     is when kubectl's rule becomes true; read with `sim.peek` every millisecond) to the waiter
 *     returning. Three waiters, each on its own image change of the same 5-replica Deployment,
 *     interleaved round by round: our `waitForDeployment`, the whole `deploy()` engine (apply +
 *     wait; lock off, no GitHub), and a spawned `kubectl rollout status`. Each waiter starts right
 *     after the change, so kubectl's process start falls inside the rollout, not after it.
 * (b) Applying 200 objects (100 ConfigMaps, 50 Services, 50 one-replica Deployments, one YAML
 *     file each in one directory) to a fresh namespace, then again with nothing changed: our
 *     engine (`loadManifests` + `resolveObjects` + `applyObjects`, server-side apply, in process)
 *     against `kubectl apply -f dir` (client-side) and `kubectl apply --server-side -f dir`.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../packages/core/index.ts';
import { applyObjects, resolveObjects } from '../packages/kube/apply.ts';
import { KubeClient } from '../packages/kube/client.ts';
import { loadManifests, parseManifestText } from '../packages/kube/manifests.ts';
import { ResourceCatalog } from '../packages/kube/resources.ts';
import { type DeploymentObject, waitForDeployment } from '../packages/kube/rollout.ts';
import { deploy } from '../packages/rollout/deploy.ts';
import { startKubeSim } from '../tooling/kube-sim/index.ts';

const ROLLOUTS = Math.max(1, Math.min(50, Number(process.argv[2] ?? 10)));
const REPLICAS = 5;
const TIME_SCALE = 20;
const APPLY_REPEATS = 3;
const NS = 'bench';

// Slow pod start (8 s simulated = 400 ms real) so that every rollout outlasts kubectl's own start-up.
const sim = await startKubeSim({
  timeScale: TIME_SCALE,
  namespaces: [NS],
  images: [{ pattern: 'registry.local/bench:*', pullMs: 300, startupMs: 5000, readyMs: 3000 }],
});
const client = KubeClient.load({ kubeconfig: sim.kubeconfigPath, logger: silentLogger });
const work = await mkdtemp(join(tmpdir(), 'bench-deploy-env-'));
const kubectlEnv = { ...process.env, KUBECONFIG: sim.kubeconfigPath };

function kubectl(args: string[]): Promise<{ code: number | null; exitedAt: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('kubectl', args, { env: kubectlEnv, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, exitedAt: performance.now(), stderr }));
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
function p90(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.9 * s.length) - 1)]!;
}

function manifest(name: string, image: string): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}, labels: { app: ${name} } }
spec:
  replicas: ${REPLICAS}
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec:
      containers:
        - name: web
          image: ${image}
`;
}

/** Resolves with performance.now() at the first poll where the rollout of `image` is done in the store. */
function whenDone(name: string, image: string, signal: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const deadline = performance.now() + 60_000;
    const tick = () => {
      if (signal.aborted) return reject(new Error('observer aborted'));
      const d = sim.peek('Deployment', NS, name) as DeploymentObject | undefined;
      const spec = d?.spec as
        | { replicas?: number; template?: { spec?: { containers?: { image?: string }[] } } }
        | undefined;
      const st = d?.status ?? {};
      const replicas = spec?.replicas ?? 1;
      if (
        d &&
        spec?.template?.spec?.containers?.[0]?.image === image &&
        (st.observedGeneration ?? 0) >= (d.metadata.generation ?? 0) &&
        st.updatedReplicas === replicas &&
        st.availableReplicas === replicas &&
        st.replicas === replicas
      )
        return resolve(performance.now());
      if (performance.now() > deadline) return reject(new Error(`${name} did not roll out ${image} in 60 s`));
      setTimeout(tick, 1);
    };
    tick();
  });
}

async function setImage(name: string, image: string): Promise<void> {
  await client.json('PATCH', `/apis/apps/v1/namespaces/${NS}/deployments/${name}`, {
    body: JSON.stringify({ spec: { template: { spec: { containers: [{ name: 'web', image }] } } } }),
    contentType: 'application/strategic-merge-patch+json',
  });
}

type Waiter = 'waitForDeployment' | 'deploy() engine' | 'kubectl rollout status';
const WAITERS: Waiter[] = ['waitForDeployment', 'deploy() engine', 'kubectl rollout status'];

async function oneRollout(
  waiter: Waiter,
  name: string,
  image: string,
): Promise<{ gap: number; total: number }> {
  const stop = new AbortController();
  const started = performance.now();
  let done: Promise<number>;
  let exitedAt: number;
  if (waiter === 'deploy() engine') {
    done = whenDone(name, image, stop.signal);
    const result = await deploy({
      client,
      app: name,
      environment: 'bench',
      namespace: NS,
      createNamespace: false,
      objects: parseManifestText(manifest(name, 'registry.local/bench:v0'), 'bench.yaml', work),
      images: new Map([['registry.local/bench', image]]),
      prune: false,
      dryRun: false,
      forceConflicts: true,
      timeoutMs: 60_000,
      stuckGraceMs: 30_000,
      rollbackOnFailure: false,
      logger: silentLogger,
    });
    exitedAt = performance.now();
    if (!result.ok) throw new Error(`deploy failed: ${result.failure}`);
  } else {
    await setImage(name, image);
    done = whenDone(name, image, stop.signal);
    if (waiter === 'waitForDeployment') {
      const outcome = await waitForDeployment({
        client,
        namespace: NS,
        name,
        deadline: Date.now() + 60_000,
        stuckGraceMs: 30_000,
        logger: silentLogger,
      });
      exitedAt = performance.now();
      if (!outcome.ok) throw new Error(`waitForDeployment: ${outcome.message}`);
    } else {
      const r = await kubectl(['rollout', 'status', `deployment/${name}`, '-n', NS, '--timeout=60s']);
      exitedAt = r.exitedAt;
      if (r.code !== 0) throw new Error(`kubectl rollout status exited ${r.code}: ${r.stderr}`);
    }
  }
  // The waiter may (wrongly) return before the store says done; the observer then still settles.
  const availableAt = await done.finally(() => stop.abort());
  return { gap: exitedAt - availableAt, total: exitedAt - started };
}

try {
  console.log(
    `deploy-env benchmark (node ${process.version}, kube-sim ×${TIME_SCALE}, ${REPLICAS} replicas, ${ROLLOUTS} rollouts per waiter)\n`,
  );
  // (a) one Deployment per waiter, created and rolled out once before timing.
  const names = new Map<Waiter, string>(WAITERS.map((w, i) => [w, `app-${i}`]));
  for (const name of names.values()) {
    await client.json('POST', `/apis/apps/v1/namespaces/${NS}/deployments`, {
      body: JSON.stringify(
        parseManifestText(manifest(name, 'registry.local/bench:v0'), 'x', work)[0]!.object,
      ),
    });
    await whenDone(name, 'registry.local/bench:v0', new AbortController().signal);
  }
  const gaps = new Map<Waiter, number[]>(WAITERS.map((w) => [w, []]));
  const totals = new Map<Waiter, number[]>(WAITERS.map((w) => [w, []]));
  for (let round = 1; round <= ROLLOUTS; round++) {
    for (const waiter of WAITERS) {
      const { gap, total } = await oneRollout(waiter, names.get(waiter)!, `registry.local/bench:v${round}`);
      gaps.get(waiter)!.push(gap);
      totals.get(waiter)!.push(total);
    }
  }
  console.log('(a) rollout done in the store → waiter returned (ms)');
  console.log(
    `${'waiter'.padEnd(26)}${'median'.padStart(9)}${'p90'.padStart(9)}${'min'.padStart(9)}${'max'.padStart(9)}${'rollout median'.padStart(17)}`,
  );
  for (const waiter of WAITERS) {
    const g = gaps.get(waiter)!;
    console.log(
      `${waiter.padEnd(26)}${median(g).toFixed(1).padStart(9)}${p90(g).toFixed(1).padStart(9)}${Math.min(...g)
        .toFixed(1)
        .padStart(9)}${Math.max(...g)
        .toFixed(1)
        .padStart(9)}${median(totals.get(waiter)!).toFixed(0).padStart(17)}`,
    );
  }
  const k = gaps.get('kubectl rollout status')!;
  for (const waiter of ['waitForDeployment', 'deploy() engine'] as const) {
    const g = gaps.get(waiter)!;
    console.log(
      `kubectl / ${waiter}: median ×${(median(k) / Math.max(0.01, median(g))).toFixed(1)}, p90 ×${(p90(k) / Math.max(0.01, p90(g))).toFixed(1)}`,
    );
  }

  // (b) 200 objects in one directory.
  const dir = join(work, 'objects');
  await mkdir(dir);
  for (let i = 0; i < 100; i++) {
    await writeFile(
      join(dir, `cm-${String(i).padStart(3, '0')}.yaml`),
      `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: cm-${i} }\ndata: { key: "value-${i}", other: "x" }\n`,
    );
  }
  for (let i = 0; i < 50; i++) {
    await writeFile(
      join(dir, `svc-${String(i).padStart(3, '0')}.yaml`),
      `apiVersion: v1\nkind: Service\nmetadata: { name: svc-${i} }\nspec:\n  selector: { app: d-${i} }\n  ports: [{ port: 80, targetPort: 8080 }]\n`,
    );
    await writeFile(
      join(dir, `deploy-${String(i).padStart(3, '0')}.yaml`),
      `apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: d-${i} }\nspec:\n  replicas: 1\n  selector: { matchLabels: { app: d-${i} } }\n  template:\n    metadata: { labels: { app: d-${i} } }\n    spec:\n      containers: [{ name: web, image: "registry.local/other:v1" }]\n`,
    );
  }
  let nsCounter = 0;
  const freshNamespace = async (): Promise<string> => {
    const ns = `apply-${++nsCounter}`;
    await client.json('POST', '/api/v1/namespaces', {
      body: JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }),
    });
    return ns;
  };
  const ours = async (ns: string): Promise<number> => {
    const start = performance.now();
    const objects = await loadManifests({ manifests: [dir], cwd: work });
    const resolved = await resolveObjects(objects, new ResourceCatalog(client), ns);
    const applied = await applyObjects({ client, objects: resolved, dryRun: false, forceConflicts: false });
    const ms = performance.now() - start;
    if (applied.length !== 200) throw new Error(`applied ${applied.length} objects`);
    return ms;
  };
  const viaKubectl =
    (extra: string[]) =>
    async (ns: string): Promise<number> => {
      const start = performance.now();
      const r = await kubectl(['apply', ...extra, '-n', ns, '-f', dir]);
      if (r.code !== 0) throw new Error(`kubectl apply ${extra.join(' ')} exited ${r.code}: ${r.stderr}`);
      return r.exitedAt - start;
    };
  const tools: [string, (ns: string) => Promise<number>][] = [
    ['ours (server-side, in process)', ours],
    ['kubectl apply (client-side)', viaKubectl([])],
    ['kubectl apply --server-side', viaKubectl(['--server-side'])],
  ];
  const cold = new Map<string, number[]>();
  const again = new Map<string, number[]>();
  for (let rep = 0; rep < APPLY_REPEATS; rep++) {
    for (const [label, run] of tools) {
      const ns = await freshNamespace();
      (cold.get(label) ?? cold.set(label, []).get(label)!).push(await run(ns));
      (again.get(label) ?? again.set(label, []).get(label)!).push(await run(ns));
    }
  }
  const floor: number[] = [];
  for (let i = 0; i < APPLY_REPEATS; i++) {
    const start = performance.now();
    const r = await kubectl(['get', 'namespace', NS, '-o', 'name']);
    if (r.code !== 0) throw new Error(`kubectl get exited ${r.code}: ${r.stderr}`);
    floor.push(r.exitedAt - start);
  }
  console.log(
    `\n(b) apply 200 objects (100 ConfigMaps, 50 Services, 50 Deployments), median of ${APPLY_REPEATS}, fresh namespace each`,
  );
  console.log(
    `${'tool'.padEnd(34)}${'cold ms'.padStart(9)}${'re-apply ms'.padStart(13)}${'cold ×ours'.padStart(12)}${'re ×ours'.padStart(10)}`,
  );
  const oursCold = median(cold.get(tools[0]![0])!);
  const oursAgain = median(again.get(tools[0]![0])!);
  for (const [label] of tools) {
    const c = median(cold.get(label)!);
    const a = median(again.get(label)!);
    console.log(
      `${label.padEnd(34)}${c.toFixed(0).padStart(9)}${a.toFixed(0).padStart(13)}${(c / oursCold).toFixed(2).padStart(12)}${(a / oursAgain).toFixed(2).padStart(10)}`,
    );
  }
  console.log(`${'kubectl get namespace (floor)'.padEnd(34)}${median(floor).toFixed(0).padStart(9)}`);
} finally {
  client.close();
  await sim.close();
  await rm(work, { recursive: true, force: true });
}
