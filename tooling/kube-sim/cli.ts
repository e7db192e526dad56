/**
 * Starts kube-sim on its own: `node tooling/kube-sim/cli.ts [--port N] [--time-scale N] [--token T]`.
 * Prints the kubeconfig path and an export line, then serves until Ctrl-C.
 */
import { parseArgs } from 'node:util';
import { startKubeSim } from './index.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'time-scale': { type: 'string', default: '1' },
    token: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log('usage: node tooling/kube-sim/cli.ts [--port N] [--time-scale N] [--token T]');
  process.exit(0);
}

const port = Number(values.port);
const timeScale = Number(values['time-scale']);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port has ${JSON.stringify(values.port)}, which is not a port number (0-65535)`);
  process.exit(2);
}
if (!Number.isFinite(timeScale) || timeScale <= 0) {
  console.error(`--time-scale has ${JSON.stringify(values['time-scale'])}, which is not a positive number`);
  process.exit(2);
}

const sim = await startKubeSim({ port, timeScale, ...(values.token ? { token: values.token } : {}) });
console.log(`kube-sim listening on ${sim.url} (time scale ${sim.timeScale}x)`);
console.log(`kubeconfig: ${sim.kubeconfigPath}`);
console.log(`export KUBECONFIG=${sim.kubeconfigPath}`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    console.log('kube-sim stopping');
    sim.close().then(() => process.exit(0));
  });
}
