/**
 * Failing releases under API faults: `node bench/rollback-faults.ts [releases] [error-rate]`
 * (default 10 and 0.2). Deploys a good release with the built deploy-env, then that many releases
 * whose pods crash while kube-sim answers that share of every API request with a 503; prints how
 * many ended on the previous version (the rollback went through) and how many said NOT ROLLED BACK. Needs a built dist/ (`npm run build`). Figures only; nothing here asserts.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKubeSim } from '../tooling/kube-sim/index.ts';
import { runBuiltAction } from '../tooling/runners/action-runner.ts';

const releases = Number(process.argv[2] ?? 10);
const errorRate = Number(process.argv[3] ?? 0.2);
const sim = await startKubeSim({
  timeScale: 20,
  images: [{ pattern: '*:crash*', mode: 'crash', crashAfterMs: 500 }],
});
const work = mkdtempSync(join(tmpdir(), 'bench-rollback-'));

function manifests(n: number, image: string): string {
  const dir = join(work, `r${n}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'app.yaml'),
    `apiVersion: apps/v1
kind: Deployment
metadata: { name: shop, labels: { app: shop } }
spec:
  replicas: 3
  selector: { matchLabels: { app: shop } }
  template:
    metadata: { labels: { app: shop } }
    spec: { containers: [{ name: web, image: ${image} }] }
`,
  );
  return dir;
}

const deploy = (n: number, image: string) =>
  runBuiltAction('deploy-env', {
    inputs: {
      environment: 'dev',
      app: 'shop',
      namespace: 'shop-dev',
      'create-namespace': 'true',
      manifests: manifests(n, image),
      kubeconfig: sim.kubeconfigPath,
      'fail-fast-after': '2s',
      timeout: '60s',
      'github-deployment': 'false',
    },
    github: { runId: String(1000 + n) },
    cwd: work,
    env: { GITHUB_WORKSPACE: work },
    timeoutMs: 300_000,
  });

const imageNow = () =>
  (
    sim.peek('Deployment', 'shop-dev', 'shop') as unknown as {
      spec: { template: { spec: { containers: { image: string }[] } } };
    }
  ).spec.template.spec.containers[0]!.image;

try {
  const good = await deploy(0, 'registry.local/shop:v1');
  if (good.exitCode !== 0) throw new Error(`the good release failed:\n${good.log}`);
  let back = 0;
  let notRolledBack = 0;
  const started = Date.now();
  sim.setFaults({ errorRate, statuses: [503], retryAfterSeconds: 0 });
  for (let n = 1; n <= releases; n++) {
    const step = await deploy(n, `registry.local/shop:crash-${n}`);
    const onPrevious = imageNow() === 'registry.local/shop:v1';
    if (onPrevious) back++;
    if (/NOT ROLLED BACK/.test(step.outputs.failure ?? '')) notRolledBack++;
    process.stdout.write(
      `release ${n}: exit ${step.exitCode}, rolled-back=${step.outputs['rolled-back']}, cluster runs ${imageNow()}${onPrevious ? '' : ' (NOT the previous version)'}\n`,
    );
  }
  sim.setFaults({});
  process.stdout.write(
    `\n${back}/${releases} failing releases ended on the previous version under ${Math.round(errorRate * 100)}% injected 503s` +
      ` (${notRolledBack} said NOT ROLLED BACK; ${((Date.now() - started) / releases / 1000).toFixed(1)} s per release)\n`,
  );
} finally {
  await sim.close();
  rmSync(work, { recursive: true, force: true });
}
