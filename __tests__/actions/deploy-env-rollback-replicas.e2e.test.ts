import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, test } from '@jest/globals';
import { parse } from 'yaml';
import { LocalGitHub } from '../../tooling/local-services/local-github.ts';
import { REPO_ROOT, runBuiltAction, type StepResult } from '../../tooling/runners/action-runner.ts';
import {
  deploymentYaml,
  kubectlFor,
  useKubeSim,
  useServer,
  useWorkDir,
} from '../../tooling/test-support/fixtures.ts';

/**
 * A rollback ends on the previous release's template AND its replicas: an overlay that raised
 * spec.replicas must not leave the new count behind (deploy-env's own rollback, and deploy.yml's
 * rollback step after a failed health gate, which uses deploy-env's rollback-* outputs).
 */

const run = promisify(execFile);
const sim = useKubeSim({
  timeScale: 20,
  images: [{ pattern: '*:crash*', mode: 'crash', crashAfterMs: 500 }],
});
const github = useServer('LocalGitHub', () => LocalGitHub.start());
const work = useWorkDir('rollback-replicas-');
const { kubectlJson } = kubectlFor(sim, work);

async function live(namespace: string): Promise<{ image: string; replicas: number; revision: string }> {
  const d = await kubectlJson<{
    metadata: { annotations: Record<string, string> };
    spec: { replicas: number; template: { spec: { containers: { image: string }[] } } };
  }>('get', 'deployment', 'shop', '-n', namespace);
  return {
    image: d.spec.template.spec.containers[0]!.image,
    replicas: d.spec.replicas,
    revision: d.metadata.annotations['deployment.kubernetes.io/revision']!,
  };
}

function overlay(dir: string, replicas: number): string {
  const path = join(work, dir);
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, 'app.yaml'), deploymentYaml({ replicas }));
  return path;
}

const deploy = (namespace: string, manifests: string, image: string): Promise<StepResult> =>
  runBuiltAction('deploy-env', {
    inputs: {
      kubeconfig: sim.kubeconfigPath,
      'fail-fast-after': '2s',
      timeout: '60s',
      environment: 'production',
      app: 'shop',
      namespace,
      manifests,
      image,
      'create-namespace': 'true',
    },
    github: { apiUrl: github.url },
    cwd: work,
    timeoutMs: 120_000,
  });

describe('a rolling rollback restores the previous replicas with the previous template', () => {
  test("deploy-env's own rollback of a failed rollout", async () => {
    const ns = 'shop-own';
    const first = await deploy(ns, overlay('own-10', 10), 'registry.local/shop:v1');
    expect(first.exitCode).toBe(0);
    const step = await deploy(ns, overlay('own-12', 12), 'registry.local/shop:crash-2');
    expect(step.exitCode).toBe(1);
    expect(step.outputs['rolled-back']).toBe('true');
    expect(await live(ns)).toMatchObject({ image: 'registry.local/shop:v1', replicas: 10 });
    // The restored count is no field another deploy must fight for: the next release applies its own.
    const next = await deploy(ns, overlay('own-12b', 12), 'registry.local/shop:v3');
    expect(next.exitCode).toBe(0);
    expect(await live(ns)).toMatchObject({ image: 'registry.local/shop:v3', replicas: 12 });
  }, 180_000);

  test("deploy.yml's rollback step after a failed health gate, from deploy-env's outputs", async () => {
    const ns = 'shop-gate';
    expect((await deploy(ns, overlay('gate-10', 10), 'registry.local/shop:v1')).exitCode).toBe(0);
    const before = await live(ns);
    const step = await deploy(ns, overlay('gate-12', 12), 'registry.local/shop:v2');
    expect(step.exitCode).toBe(0);
    expect(await live(ns)).toMatchObject({ image: 'registry.local/shop:v2', replicas: 12 });
    expect(step.outputs['rollback-replicas']).toBe('10');

    // The workflow's own step, as written, with the env its expressions give it on the rolling path.
    const workflow = parse(readFileSync(join(REPO_ROOT, '.github', 'workflows', 'deploy.yml'), 'utf8'));
    const rollback = workflow.jobs.deploy.steps.find((s: { id?: string }) => s.id === 'rollback');
    // Rolling gives deploy-env's rollback replicas; canary the stable's count saved before the shift.
    expect(rollback.env.REPLICAS).toBe(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub expression, not a template
      '${{ steps.rolling.outputs.rollback-replicas || steps.stable.outputs.replicas }}',
    );
    expect(rollback.env.PREVIOUS).toMatch(/^\$\{\{ steps\.rolling\.outputs\.rollback-revision \|\|/);
    const output = join(work, 'gate-output');
    writeFileSync(output, '');
    // Not spawnSync: the simulated API server answers from this very process.
    const result = await run('bash', ['-e', '-o', 'pipefail', '-c', rollback.run], {
      env: {
        ...process.env,
        KUBECONFIG_CONTENT: readFileSync(sim.kubeconfigPath, 'utf8'),
        APP: 'shop',
        NAMESPACE: ns,
        TIMEOUT: '60s',
        PREVIOUS: step.outputs['rollback-revision']!,
        CURRENT: step.outputs.revision!,
        REPLICAS: step.outputs['rollback-replicas']!,
        RUNNER_TEMP: work,
        GITHUB_OUTPUT: output,
      },
    });
    expect(result.stderr).toBe('');
    expect(await live(ns)).toMatchObject({ image: before.image, replicas: 10 });
    expect(readFileSync(output, 'utf8')).toContain('rolled-back=true');
  }, 180_000);
});
