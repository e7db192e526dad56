/**
 * kube-sim throughput and rollout speed: `node bench/kube-sim.ts`.
 * Prints requests per second for get, list and patch from a client over loopback (bounded
 * loops, a few requests in flight), and how long a 100-replica rolling update takes at a fast
 * time scale. Figures only; nothing here asserts.
 */
import { Agent, request } from 'node:http';
import { startKubeSim } from '../tooling/kube-sim/index.ts';

const TIME_SCALE = 200;
const sim = await startKubeSim({ timeScale: TIME_SCALE });
const agent = new Agent({ keepAlive: true, maxSockets: 8 });
const auth = `Bearer ${sim.token}`;

function call(
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      `${sim.url}${path}`,
      {
        method,
        agent,
        headers: {
          authorization: auth,
          ...(payload ? { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function measure(
  label: string,
  total: number,
  concurrency: number,
  op: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await op(next++);
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `${label.padEnd(34)} ${String(Math.round(total / seconds)).padStart(7)} req/s  (${total} requests, ${concurrency} in flight)`,
  );
}

async function expectOk(p: Promise<{ status: number; text: string }>): Promise<void> {
  const res = await p;
  if (res.status >= 300) throw new Error(`HTTP ${res.status}: ${res.text}`);
}

// A namespace with 200 ConfigMaps to get, list and patch.
for (let i = 0; i < 200; i++) {
  await expectOk(
    call('POST', '/api/v1/namespaces/default/configmaps', {
      metadata: { name: `cm-${i}`, labels: { n: String(i % 10) } },
      data: { v: '0' },
    }),
  );
}

console.log(`kube-sim benchmark (node ${process.version}, time scale ${TIME_SCALE}x)`);
await measure('get configmap', 5000, 8, (i) =>
  expectOk(call('GET', `/api/v1/namespaces/default/configmaps/cm-${i % 200}`)),
);
await measure('list 200 configmaps', 1000, 8, () =>
  expectOk(call('GET', '/api/v1/namespaces/default/configmaps')),
);
await measure('list by label selector (20 of 200)', 2000, 8, (i) =>
  expectOk(call('GET', `/api/v1/namespaces/default/configmaps?labelSelector=n%3D${i % 10}`)),
);
await measure('merge patch configmap', 3000, 8, (i) =>
  expectOk(
    call(
      'PATCH',
      `/api/v1/namespaces/default/configmaps/cm-${i % 200}`,
      { data: { v: String(i) } },
      'application/merge-patch+json',
    ),
  ),
);
await measure('strategic merge patch deployment', 1000, 8, async (i) => {
  if (i === 0) {
    await expectOk(
      call('POST', '/apis/apps/v1/namespaces/default/deployments', {
        metadata: { name: 'patched' },
        spec: {
          replicas: 0,
          selector: { matchLabels: { app: 'patched' } },
          template: {
            metadata: { labels: { app: 'patched' } },
            spec: { containers: [{ name: 'app', image: 'registry/app:v1' }] },
          },
        },
      }),
    );
  }
  await expectOk(
    call(
      'PATCH',
      '/apis/apps/v1/namespaces/default/deployments/patched',
      { metadata: { annotations: { n: String(i) } } },
      'application/strategic-merge-patch+json',
    ),
  );
});

// A 100-replica rolling update, timed from the template change until kubectl would call it rolled out.
const replicas = 100;
async function rolledOut(): Promise<boolean> {
  const d = JSON.parse((await call('GET', '/apis/apps/v1/namespaces/default/deployments/big')).text);
  const s = d.status ?? {};
  return (
    (s.observedGeneration ?? 0) >= d.metadata.generation &&
    s.updatedReplicas === replicas &&
    s.replicas === replicas &&
    s.availableReplicas === replicas
  );
}
async function waitRolledOut(): Promise<void> {
  const deadline = Date.now() + 300_000;
  while (!(await rolledOut())) {
    if (Date.now() > deadline) throw new Error('rollout did not finish within 5 minutes');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
await expectOk(
  call('POST', '/apis/apps/v1/namespaces/default/deployments', {
    metadata: { name: 'big' },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'big' } },
      template: {
        metadata: { labels: { app: 'big' } },
        spec: { containers: [{ name: 'app', image: 'registry/app:v1' }] },
      },
    },
  }),
);
let started = performance.now();
await waitRolledOut();
console.log(
  `initial rollout, ${replicas} replicas`.padEnd(34),
  `${Math.round(performance.now() - started)} ms real`,
);
started = performance.now();
await expectOk(
  call(
    'PATCH',
    '/apis/apps/v1/namespaces/default/deployments/big',
    { spec: { template: { spec: { containers: [{ name: 'app', image: 'registry/app:v2' }] } } } },
    'application/strategic-merge-patch+json',
  ),
);
await waitRolledOut();
const realMs = performance.now() - started;
console.log(
  `rolling update, ${replicas} replicas`.padEnd(34),
  `${Math.round(realMs)} ms real = ${((realMs * TIME_SCALE) / 1000).toFixed(1)} s simulated (25% surge / 25% unavailable, ~1.3 s pod start)`,
);

agent.destroy();
await sim.close();
