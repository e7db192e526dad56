/**
 * Starts the real control plane on its own; see USAGE. Builds it first when the cache is cold,
 * prints the kubeconfig path exactly as `node tooling/kube-sim/cli.ts` does, then runs until
 * interrupted (Ctrl-C, SIGTERM, SIGHUP) and removes everything it made.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ImageBehaviour, PodMode } from '../kube-sim/types.ts';
import { findControlPlane, startRealCluster } from './index.ts';

const USAGE = `usage: node tooling/control-plane/cli.ts [--nodes N] [--time-scale N] [--image PATTERN=MODE]...

  --nodes N              KWOK nodes (1-100, default 3)
  --time-scale N         pods pull, start and become ready N times faster than kube-sim's
                         simulated delays (300 ms pull, 500 ms start, 500 ms ready; default 1)
  --image PATTERN=MODE   pods whose image matches the glob PATTERN behave as MODE:
                         ready, crash (CrashLoopBackOff), pull-error (ErrImagePull, then
                         ImagePullBackOff), never-ready, unschedulable; repeatable, first match wins
                         e.g. --image '*:crash*=crash' --image 'registry.local/*:gone=pull-error'`;

const MODES: PodMode[] = ['ready', 'crash', 'pull-error', 'never-ready', 'unschedulable'];

function fail(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

let values: { nodes: string; 'time-scale': string; image: string[]; help: boolean };
try {
  values = parseArgs({
    options: {
      nodes: { type: 'string', default: '3' },
      'time-scale': { type: 'string', default: '1' },
      image: { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values as typeof values;
} catch (err) {
  fail((err as Error).message);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const nodes = Number(values.nodes);
const timeScale = Number(values['time-scale']);
if (!/^\d+$/.test(values.nodes) || nodes < 1 || nodes > 100) {
  fail(`--nodes has ${JSON.stringify(values.nodes)}, which is not a whole number from 1 to 100`);
}
if (!Number.isFinite(timeScale) || timeScale <= 0) {
  fail(`--time-scale has ${JSON.stringify(values['time-scale'])}, which is not a positive number`);
}
const images: ImageBehaviour[] = values.image.map((spec) => {
  const at = spec.lastIndexOf('=');
  const mode = spec.slice(at + 1) as PodMode;
  if (at <= 0 || !MODES.includes(mode)) {
    fail(`--image has ${JSON.stringify(spec)}; expected PATTERN=MODE with MODE one of ${MODES.join(', ')}`);
  }
  return { pattern: spec.slice(0, at), mode };
});

if ('missing' in findControlPlane()) {
  try {
    execFileSync(join(dirname(fileURLToPath(import.meta.url)), 'build.sh'), {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  } catch (err) {
    // build.sh has said why (no Go: exit 2); keep its exit code.
    process.exit((err as { status?: number }).status ?? 1);
  }
}
let cluster: Awaited<ReturnType<typeof startRealCluster>>;
try {
  cluster = await startRealCluster({ nodes, timeScale, images });
} catch (err) {
  console.error(`control plane did not start: ${(err as Error).message}`);
  process.exit(1);
}
console.log(
  `control plane listening on ${cluster.httpsUrl} (${nodes} KWOK node${nodes === 1 ? '' : 's'}, logs in ${cluster.dir})`,
);
console.log(`kubeconfig: ${cluster.kubeconfigPath}`);
console.log(`export KUBECONFIG=${cluster.kubeconfigPath}`);
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    console.log('control plane stopping');
    cluster.close().then(() => process.exit(0));
  });
}
