import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, test } from '@jest/globals';
import { LocalGitHub } from '../../tooling/local-services/local-github.ts';
import { REPO_ROOT } from '../../tooling/runners/action-runner.ts';
import { type JobRecord, WorkflowRunner } from '../../tooling/runners/workflow-runner.ts';
import {
  mainPush,
  useKubeSim,
  useServer,
  useWorkDir,
  useWorkflowWorkspace,
  writeCaller,
} from '../../tooling/test-support/fixtures.ts';

/**
 * Rolling releases through deploy.yml prune once final, as canary and blue-green do: after three
 * releases that each change production's configuration, the live ConfigMap generation and the
 * previous one (for a rollback) remain, the oldest is gone, and the soak still ran on all of them.
 */

const IMAGE = (d: string) => `ghcr.io/acme/shop@sha256:${d.repeat(64)}`;

const sim = useKubeSim({
  timeScale: 50,
  namespaces: ['shop-production'],
  images: [{ pattern: /ghcr\.io\/acme\/shop@/, http: { health: { status: 'healthy' } } }],
});
const github = useServer('LocalGitHub', () => LocalGitHub.start({ tokens: ['ghs_pr'] }));
const workspace = useWorkflowWorkspace('rolling-prune-', { exampleK8s: true });
const scratch = useWorkDir('rolling-prune-kube-');

const CHECKS = [
  '- name: health',
  '  service: shop:80',
  '  path: /health',
  '  json: .status == "healthy"',
].join('\n');

async function release(image: string, logLevel: string): Promise<JobRecord> {
  const overlay = join(workspace, 'k8s', 'production', 'kustomization.yaml');
  writeFileSync(overlay, readFileSync(overlay, 'utf8').replace(/- LOG_LEVEL=\S+/, `- LOG_LEVEL=${logLevel}`));
  const file = writeCaller(workspace, {
    environment: 'production',
    app: 'shop',
    image,
    strategy: 'rolling',
    checks: CHECKS,
    soak: '2s',
    interval: '500ms',
  });
  const runner = new WorkflowRunner({
    repoRoot: REPO_ROOT,
    workspace,
    event: mainPush(),
    secrets: { KUBECONFIG: sim.kubeconfig },
    vars: {},
    env: { PIPELINE_TIME_SCALE: '50', GITHUB_API_URL: github.url },
    githubApiUrl: github.url,
    token: 'ghs_pr',
    requiresApproval: () => false,
    approve: async () => true,
  });
  const run = await runner.runWorkflow(file);
  return run.jobs.find((j) => j.path === 'production/deploy')!;
}

/** The settings ConfigMaps in production (every generation), by name, with their LOG_LEVEL. */
async function settingsGenerations(): Promise<Record<string, string>> {
  const kubeconfig = join(scratch, 'kubeconfig');
  writeFileSync(kubeconfig, sim.kubeconfig);
  // Asynchronously: kube-sim answers from this process.
  const { stdout } = await promisify(execFile)('kubectl', [
    '--kubeconfig',
    kubeconfig,
    'get',
    'configmaps',
    '-n',
    'shop-production',
    '-o',
    'json',
  ]);
  const items = (
    JSON.parse(stdout) as { items: { metadata: { name: string }; data?: Record<string, string> }[] }
  ).items;
  return Object.fromEntries(
    items
      .filter((c) => c.metadata.name.startsWith('shop-settings'))
      .map((c) => [c.metadata.name, c.data?.LOG_LEVEL ?? '']),
  );
}

const liveSettings = () => {
  const d = sim.peek('Deployment', 'shop-production', 'shop') as unknown as {
    spec: { template: { spec: { containers: { envFrom?: { configMapRef?: { name: string } }[] }[] } } };
  };
  return d.spec.template.spec.containers[0]!.envFrom!.find((e) => e.configMapRef)!.configMapRef!.name;
};

describe('deploy.yml: a rolling release prunes older configuration generations once its soak passed', () => {
  test('three releases with changing configuration leave the live and the previous generation', async () => {
    const levels = ['warn', 'info', 'debug'];
    const live: string[] = [];
    for (const [i, level] of levels.entries()) {
      const job = await release(IMAGE(String(i + 1)), level);
      const failed = job.steps.filter((s) => s.conclusion === 'failure').map((s) => `${s.id}: ${s.error}`);
      expect(failed).toEqual([]);
      expect(job.steps.find((s) => s.id === 'gate')!.outputs.verdict).toBe('passed');
      const prune = job.steps.find((s) => s.id === 'prune')!;
      expect(prune.outcome).toBe('success');
      live.push(liveSettings());
    }
    expect(new Set(live).size).toBe(3);
    // The first generation went with the third release; the second stays for a rollback.
    expect(await settingsGenerations()).toEqual({ [live[1]!]: 'info', [live[2]!]: 'debug' });
  }, 300_000);
});
