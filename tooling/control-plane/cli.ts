/**
 * Starts the real control plane on its own: `node tooling/control-plane/cli.ts [--nodes N] [--time-scale N]`.
 * Builds it first when the cache is cold, prints the kubeconfig path exactly as
 * `node packages/kube-sim/cli.ts` does, then runs until Ctrl-C and removes everything it made.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { findControlPlane, startRealCluster } from './index.ts';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '3' },
    'time-scale': { type: 'string', default: '1' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log('usage: node tooling/control-plane/cli.ts [--nodes N] [--time-scale N]');
  process.exit(0);
}
const nodes = Number(values.nodes);
const timeScale = Number(values['time-scale']);
if (!Number.isInteger(nodes) || nodes < 1 || nodes > 100) {
  console.error(`--nodes has ${JSON.stringify(values.nodes)}, which is not a whole number from 1 to 100`);
  process.exit(2);
}
if (!Number.isFinite(timeScale) || timeScale <= 0) {
  console.error(`--time-scale has ${JSON.stringify(values['time-scale'])}, which is not a positive number`);
  process.exit(2);
}
if ('missing' in findControlPlane()) {
  try {
    execFileSync(join(dirname(fileURLToPath(import.meta.url)), 'build.sh'), {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  } catch {
    process.exit(1);
  }
}
let cluster: Awaited<ReturnType<typeof startRealCluster>>;
try {
  cluster = await startRealCluster({ nodes, timeScale });
} catch (err) {
  console.error(`control plane did not start: ${(err as Error).message}`);
  process.exit(1);
}
console.log(`control plane listening on ${cluster.httpsUrl} (${nodes} KWOK nodes, logs in ${cluster.dir})`);
console.log(`kubeconfig: ${cluster.kubeconfigPath}`);
console.log(`export KUBECONFIG=${cluster.kubeconfigPath}`);
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    console.log('control plane stopping');
    cluster.close().then(() => process.exit(0));
  });
}
