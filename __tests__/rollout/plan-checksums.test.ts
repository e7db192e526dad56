import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { MemoryLogger } from '../../packages/core/index.ts';
import { CHECKSUM_KEY_SECRET } from '../../packages/kube/checksum-key.ts';
import { KubeClient, loadKubeConfig } from '../../packages/kube/client.ts';
import {
  CONFIG_CHECKSUM_ANNOTATION,
  SECRET_CHECKSUM_ANNOTATION,
  type SourcedObject,
  stampConfigChecksums,
  stampSecretChecksums,
} from '../../packages/kube/manifests.ts';
import type { KubeObject } from '../../packages/kube/resources.ts';
import { deploy } from '../../packages/rollout/deploy.ts';
import {
  type ManifestPlan,
  planManifests,
  RESTART_CONFIG,
  RESTART_SECRET,
  RESTART_SECRET_UNKNOWN,
} from '../../packages/rollout/plan.ts';
import { manifestPlanLine, renderManifestPlan } from '../../packages/rollout/plan-summary.ts';
import { type KubeSim, startKubeSim } from '../../tooling/kube-sim/index.ts';
import { readOnlyKubeconfig } from '../../tooling/local-services/read-only-access.ts';

/**
 * The checksum annotations on pod templates never let a reader of the Deployment or of the plan
 * confirm a guessed Secret value: the Secret part is keyed by the namespace's key, and the plan
 * shows neither value, only what it means for the pods.
 */

const NS = 'shop-production';
const IMAGE = 'ghcr.io/acme/shop@sha256:1111111111111111111111111111111111111111111111111111111111111111';
const OLD_PASSWORD = 'hunter2-PROD-s3cr3t-OLD';
const NEW_PASSWORD = 'hunter2-PROD-s3cr3t-NEW';

function manifests(o: { password: string; logLevel: string }): SourcedObject[] {
  const objects: KubeObject[] = [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'shop-settings' },
      data: { LOG_LEVEL: o.logLevel },
    },
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'shop-db' },
      type: 'Opaque',
      stringData: { PASSWORD: o.password },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'shop', labels: { app: 'shop' } },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'shop' } },
        template: {
          metadata: { labels: { app: 'shop' } },
          spec: {
            containers: [
              {
                name: 'shop',
                image: 'ghcr.io/acme/shop:dev',
                envFrom: [{ configMapRef: { name: 'shop-settings' } }],
                env: [
                  { name: 'DB_PASSWORD', valueFrom: { secretKeyRef: { name: 'shop-db', key: 'PASSWORD' } } },
                ],
              },
            ],
          },
        },
      },
    },
  ];
  return objects.map((object, i) => ({ object, source: `test (document ${i + 1})` }));
}

type Templated = { spec: { template: { metadata: { annotations?: Record<string, string> } } } };
const annotationsOf = (objects: SourcedObject[]) =>
  (objects.find((o) => o.object.kind === 'Deployment')!.object as unknown as Templated).spec.template.metadata
    .annotations ?? {};

/** What the unkeyed stamp of before printed: sha256 over `Kind/name\n<data json>\n` per object. */
function unkeyed(objects: SourcedObject[], kinds: string[]): string {
  const hash = createHash('sha256');
  const items = objects
    .filter((o) => kinds.includes(o.object.kind))
    .map((o) => `${o.object.kind}/${o.object.metadata.name}`)
    .sort();
  for (const key of items) {
    const { object } = objects.find((o) => `${o.object.kind}/${o.object.metadata.name}` === key)!;
    hash.update(
      `${key}\n${JSON.stringify({ data: object.data ?? null, binaryData: object.binaryData ?? null, stringData: object.stringData ?? null })}\n`,
    );
  }
  return hash.digest('hex').slice(0, 16);
}

describe('checksum annotations', () => {
  test('the Secret checksum changes with the Secret value and depends on the key, so the data alone does not give it', () => {
    const key = randomBytes(32);
    const stamped = (password: string, k: Buffer) => {
      const objects = manifests({ password, logLevel: 'info' });
      stampConfigChecksums(objects);
      stampSecretChecksums(objects, k);
      return { objects, annotations: annotationsOf(objects) };
    };
    const old = stamped(OLD_PASSWORD, key);
    const changed = stamped(NEW_PASSWORD, key);
    expect(old.annotations[SECRET_CHECKSUM_ANNOTATION]).toMatch(/^[0-9a-f]{16}$/);
    expect(changed.annotations[SECRET_CHECKSUM_ANNOTATION]).not.toBe(
      old.annotations[SECRET_CHECKSUM_ANNOTATION],
    );
    // Same key, same data: the same value, so an unchanged release does not roll the pods.
    expect(stamped(OLD_PASSWORD, key).annotations).toEqual(old.annotations);
    // Another key, same data: another value; what a guess of the password can compute is not it.
    expect(stamped(OLD_PASSWORD, randomBytes(32)).annotations[SECRET_CHECKSUM_ANNOTATION]).not.toBe(
      old.annotations[SECRET_CHECKSUM_ANNOTATION],
    );
    const guesses = [unkeyed(old.objects, ['Secret']), unkeyed(old.objects, ['ConfigMap', 'Secret'])];
    for (const value of Object.values(old.annotations)) expect(guesses).not.toContain(value);
    // The ConfigMap checksum covers ConfigMaps only: a password change leaves it as it was.
    expect(changed.annotations[CONFIG_CHECKSUM_ANNOTATION]).toBe(old.annotations[CONFIG_CHECKSUM_ANNOTATION]);
    expect(old.annotations[CONFIG_CHECKSUM_ANNOTATION]).toBe(unkeyed(old.objects, ['ConfigMap']));
  });
});

let sim: KubeSim;
let admin: KubeClient;

const deployWith = (password: string, logLevel: string, namespace = NS) =>
  deploy({
    client: admin,
    app: 'shop',
    environment: 'production',
    namespace,
    createNamespace: true,
    objects: manifests({ password, logLevel }),
    images: new Map([['ghcr.io/acme/shop', IMAGE]]),
    prune: false,
    dryRun: false,
    forceConflicts: true,
    timeoutMs: 60_000,
    stuckGraceMs: 30_000,
    rollbackOnFailure: false,
    logger: new MemoryLogger(),
  });

const planWith = (client: KubeClient, password: string, logLevel: string, namespace = NS) =>
  planManifests({
    client,
    app: 'shop',
    environment: 'production',
    namespace,
    objects: manifests({ password, logLevel }),
    images: new Map([['ghcr.io/acme/shop', IMAGE]]),
    logger: new MemoryLogger(),
  });

/** The digest line pipeline.yml's production-plan job builds from the plan output, run with its own jq program. */
function digestOf(plan: ManifestPlan): string {
  const workflow = readFileSync(join(process.cwd(), '.github/workflows/pipeline.yml'), 'utf8');
  const program = /changes=\$\(jq -r '([^']+)' <<< "\$PLAN"/.exec(workflow)?.[1];
  expect(program).toBeDefined();
  return execFileSync('jq', ['-r', program!], {
    input: JSON.stringify({ namespace: plan.namespace, counts: plan.counts, objects: plan.objects }),
    encoding: 'utf8',
  });
}

beforeAll(async () => {
  sim = await startKubeSim({
    timeScale: 50,
    namespaces: [NS],
    images: [{ pattern: '*', http: { health: { ok: true } } }],
  });
  admin = new KubeClient(loadKubeConfig({ kubeconfig: sim.kubeconfig }));
  expect((await deployWith(OLD_PASSWORD, 'info')).ok).toBe(true);
});
afterAll(async () => {
  admin?.close();
  await sim?.close();
});

describe('the plan never shows a checksum', () => {
  test('a Secret-only change through a plan that may not read Secrets: "pods restart if a referenced Secret changed", no checksum value or name anywhere', async () => {
    const live = annotationsOf([
      { object: sim.peek('Deployment', NS, 'shop') as unknown as KubeObject, source: 'live' },
    ]);
    expect(live[SECRET_CHECKSUM_ANNOTATION]).toMatch(/^[0-9a-f]{16}$/);
    expect(live[CONFIG_CHECKSUM_ANNOTATION]).toMatch(/^[0-9a-f]{16}$/);
    // The key the deploy created on first need, in the namespace, next to the Secrets it covers.
    expect(
      (sim.peek('Secret', NS, CHECKSUM_KEY_SECRET) as { data?: { key?: string } } | undefined)?.data?.key,
    ).toBeDefined();

    const readOnly = new KubeClient(loadKubeConfig({ kubeconfig: await readOnlyKubeconfig(sim, NS) }));
    try {
      for (const [password, logLevel, words] of [
        [NEW_PASSWORD, 'info', RESTART_SECRET_UNKNOWN],
        [NEW_PASSWORD, 'debug', RESTART_CONFIG],
      ] as const) {
        const plan = await planWith(readOnly, password, logLevel);
        const deployment = plan.objects.find((p) => p.kind === 'Deployment')!;
        expect(deployment.callouts).toContain(words);
        expect(plan.objects.find((p) => p.kind === 'Secret')!.change).toBe('unreadable');
        const markdown = renderManifestPlan(plan, { app: 'shop', environment: 'production', image: IMAGE });
        const digest = digestOf(plan);
        expect(markdown).toContain(words.replace(/[()]/g, '\\$&'));
        for (const text of [JSON.stringify(plan), markdown, digest, manifestPlanLine(plan)]) {
          for (const value of [
            live[SECRET_CHECKSUM_ANNOTATION]!,
            live[CONFIG_CHECKSUM_ANNOTATION]!,
            OLD_PASSWORD,
            NEW_PASSWORD,
            unkeyed(manifests({ password, logLevel }), ['ConfigMap', 'Secret']),
            unkeyed(manifests({ password, logLevel }), ['Secret']),
          ])
            expect(text).not.toContain(value);
          expect(text).not.toMatch(/checksum/);
        }
        if (words === RESTART_CONFIG) {
          expect(deployment.change).toBe('changed');
          expect(digest).toContain(`Deployment/shop: changed: ${RESTART_CONFIG}`);
        }
      }
    } finally {
      readOnly.close();
    }
  });

  test('with read access to Secrets the plan knows: "a referenced Secret changed"; nothing changed: no restart', async () => {
    const changed = await planWith(admin, NEW_PASSWORD, 'info');
    const deployment = changed.objects.find((p) => p.kind === 'Deployment')!;
    expect(deployment).toMatchObject({ change: 'changed', callouts: [RESTART_SECRET] });
    expect(JSON.stringify(changed)).not.toMatch(/checksum/);
    const same = await planWith(admin, OLD_PASSWORD, 'info');
    expect(same.objects.filter((p) => p.change !== 'unchanged')).toEqual([]);
  });

  test('a first release into an empty namespace: the unreadable Secret is added, not "change unknown"', async () => {
    const empty = 'shop-empty';
    const readOnly = new KubeClient(loadKubeConfig({ kubeconfig: await readOnlyKubeconfig(sim, empty) }));
    try {
      const plan = await planWith(readOnly, NEW_PASSWORD, 'info', empty);
      expect(plan.namespaceExists).toBe(true);
      expect(Object.fromEntries(plan.objects.map((p) => [`${p.kind}/${p.name}`, p.change]))).toEqual({
        'ConfigMap/shop-settings': 'added',
        'Secret/shop-db': 'added',
        'Deployment/shop': 'added',
      });
      expect(plan.counts.unreadable).toBe(0);
      const markdown = renderManifestPlan(plan, { app: 'shop', environment: 'production' });
      expect(markdown).not.toMatch(/unreadable|unknown|not readable with/);
    } finally {
      readOnly.close();
    }
    // Once something of the release is live there, an unreadable Secret is unknown again.
    expect((await deployWith(OLD_PASSWORD, 'info', empty)).ok).toBe(true);
    const again = new KubeClient(loadKubeConfig({ kubeconfig: await readOnlyKubeconfig(sim, empty) }));
    try {
      const plan = await planWith(again, NEW_PASSWORD, 'info', empty);
      expect(plan.objects.find((p) => p.kind === 'Secret')!.change).toBe('unreadable');
    } finally {
      again.close();
    }
  });
});
