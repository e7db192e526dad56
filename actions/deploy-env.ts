import { defineInputs, input, KUBE_NAME_MAX } from '../packages/config/index.ts';
import { yamlInput } from '../packages/config/yaml-input.ts';
import { InputError, PipelineError } from '../packages/core/index.ts';
import {
  checkImageInput,
  MAX_REPLICAS,
  PROTECTED_NAMESPACES,
  validReplicas,
} from '../packages/kube/limits.ts';
import { imageRepository, loadManifests } from '../packages/kube/manifests.ts';
import { configHash } from '../packages/release/config-hash.ts';
import type { DeployResult } from '../packages/rollout/deploy.ts';
import { clusterInputs, connectCluster, lockRequest, rolloutInputs } from './cluster.ts';
import { runAction } from './runtime.ts';

const DEPLOYMENT_PAYLOAD_FORM =
  'a JSON or YAML mapping of extra facts for the GitHub deployment (strategy, migrationsVersion, breakGlass, rollback)';
const RESERVED_PAYLOAD_KEYS = ['app', 'namespace', 'images', 'cluster', 'configHash', 'revision'];

function deploymentPayload(doc: unknown, name: string): Record<string, unknown> {
  if (doc === null || doc === undefined || doc === '') return {};
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new InputError(name, 'is not a mapping', DEPLOYMENT_PAYLOAD_FORM);
  const reserved = Object.keys(doc).find((k) => RESERVED_PAYLOAD_KEYS.includes(k));
  if (reserved)
    throw new InputError(name, `sets ${reserved}, which deploy-env records itself`, DEPLOYMENT_PAYLOAD_FORM);
  if (JSON.stringify(doc).length > 16_384)
    throw new InputError(name, 'is over 16 KiB', `${DEPLOYMENT_PAYLOAD_FORM}, under 16 KiB`);
  return doc as Record<string, unknown>;
}

const CLUSTER_KINDS_FORM =
  'Kubernetes kinds such as Namespace or ClusterRole, comma-separated or one per line';

export const schema = defineInputs({
  environment: input.kubeName({ required: true }),
  app: input.kubeName(),
  namespace: input.kubeName(),
  'create-namespace': input.boolean({ default: 'false' }),
  kustomize: input.string(),
  manifests: input.list(),
  image: input.string({
    pattern: /^[^\s=]+$/,
    accepted: 'an image reference such as ghcr.io/acme/shop:1.4.2 or ghcr.io/acme/shop@sha256:…',
  }),
  images: input.map({
    keyPattern: /^[^\s=]+$/,
    accepted: 'name=reference pairs, such as ghcr.io/acme/shop=ghcr.io/acme/shop@sha256:…',
  }),
  replicas: input.string({
    pattern: /^(\d+|[*a-z0-9.-]+=\d+(\s*[,\n]\s*[*a-z0-9.-]+=\d+)*)$/,
    accepted: 'a replica count for every Deployment (such as 3), or name=count pairs (shop=10, worker=2)',
  }),
  config: input.map({
    keyPattern: /^[-._a-zA-Z0-9]+$/,
    accepted: 'KEY=value pairs (ConfigMap keys: letters, digits, -, _ and .)',
  }),
  secrets: input.map({
    secret: true,
    keyPattern: /^[-._a-zA-Z0-9]+$/,
    accepted: 'KEY=value pairs (Secret keys: letters, digits, -, _ and .)',
  }),
  prune: input.boolean({ default: 'false' }),
  'dry-run': input.boolean({ default: 'false' }),
  plan: input.boolean({ default: 'false' }),
  summary: input.boolean({ default: 'true' }),
  'summary-header': input.boolean({ default: 'true' }),
  'force-conflicts': input.boolean({ default: 'true' }),
  'rollback-on-failure': input.boolean({ default: 'true' }),
  'cluster-scoped-kinds': input.list({ accepted: CLUSTER_KINDS_FORM }),
  'allow-paths-outside-workspace': input.boolean({ default: 'false' }),
  lock: input.boolean({ default: 'true' }),
  'environment-url': input.url({ public: true }),
  'github-token': input.secret(),
  'github-deployment': input.boolean({ default: 'true' }),
  'deployment-payload': yamlInput(deploymentPayload, { accepted: DEPLOYMENT_PAYLOAD_FORM }),
  'production-environment': input.boolean(),
  'transient-environment': input.boolean({ default: 'false' }),
  ...clusterInputs,
  ...rolloutInputs,
});

export async function main(): Promise<void> {
  await runAction(
    schema,
    async ({ inputs, run, log, clock, setOutput, writeSummary, cancelled, lockHolder }) => {
      if (!inputs.kustomize && !inputs.manifests?.length) {
        throw new InputError(
          'manifests',
          'and kustomize are both empty',
          'kustomize (an overlay directory such as k8s/staging) or manifests (files, directories or globs)',
        );
      }
      if (inputs.kustomize && inputs.manifests?.length) {
        throw new InputError('manifests', 'is set together with kustomize', 'either kustomize or manifests');
      }
      const app =
        inputs.app ??
        (run.repo
          .toLowerCase()
          .replace(/[^a-z0-9-]/g, '-')
          .slice(0, KUBE_NAME_MAX)
          .replace(/^-+|-+$/g, '') ||
          'app');
      const namespace =
        inputs.namespace ?? `${app}-${inputs.environment}`.slice(0, KUBE_NAME_MAX).replace(/-+$/, '');
      for (const kind of inputs.clusterScopedKinds ?? [])
        if (!/^[A-Z][A-Za-z0-9]*$/.test(kind))
          throw new InputError(
            'cluster-scoped-kinds',
            `has ${JSON.stringify(kind)}, which is not a kind`,
            CLUSTER_KINDS_FORM,
          );
      if (PROTECTED_NAMESPACES.includes(namespace))
        throw new InputError(
          'namespace',
          `is ${JSON.stringify(namespace)}, which deploys never touch`,
          `a namespace of the application's own (not ${PROTECTED_NAMESPACES.join(', ')})`,
        );
      const images = new Map(inputs.images ?? []);
      const replicas = new Map<string, number>();
      if (inputs.replicas) {
        // The rule of every number input: no leading zeros (007 may be read as octal elsewhere).
        if (/(^|=)0\d/.test(inputs.replicas))
          throw new InputError(
            'replicas',
            `has ${JSON.stringify(inputs.replicas.length > 60 ? `${inputs.replicas.slice(0, 60)}…` : inputs.replicas)}, with a count that has a leading zero`,
            `whole numbers from 0 to ${MAX_REPLICAS}, without leading zeros`,
          );
        if (/^\d+$/.test(inputs.replicas)) replicas.set('*', Number(inputs.replicas));
        else
          for (const pair of inputs.replicas.split(/[,\n]/)) {
            const [name, count] = pair.trim().split('=') as [string, string];
            replicas.set(name, Number(count));
          }
        for (const [name, count] of replicas)
          if (!validReplicas(count))
            throw new InputError(
              'replicas',
              `has ${JSON.stringify(inputs.replicas.length > 60 ? `${inputs.replicas.slice(0, 60)}…` : inputs.replicas)}, with a count${name === '*' ? '' : ` for ${name}`} over ${MAX_REPLICAS}`,
              `whole numbers from 0 to ${MAX_REPLICAS}`,
            );
      }
      if (inputs.image) checkImageInput(inputs.image, 'image');
      for (const [, ref] of images) checkImageInput(ref, 'images');
      if (inputs.image) images.set(imageRepository(inputs.image), inputs.image);
      for (const [, value] of inputs.secrets ?? []) log.mask(value);

      const objects = await loadManifests({
        ...(inputs.kustomize ? { kustomize: inputs.kustomize } : {}),
        ...(inputs.manifests ? { manifests: inputs.manifests } : {}),
        cwd: process.env.GITHUB_WORKSPACE || process.cwd(),
        guard: { allowOutsideWorkspace: inputs.allowPathsOutsideWorkspace, hasAllowInput: true },
      });
      const { prepareObjects, deploy } = await import('../packages/rollout/deploy.ts');
      // Image names that match nothing are input errors: find them before touching anything.
      const prepared = prepareObjects({
        objects,
        images,
        replicas,
        app,
        environment: inputs.environment,
        ...(inputs.config ? { config: inputs.config } : {}),
        ...(inputs.secrets ? { secrets: inputs.secrets } : {}),
      });

      if (inputs.plan && inputs.dryRun)
        throw new InputError(
          'plan',
          'is true together with dry-run',
          'either plan (read-only) or dry-run (needs write access)',
        );
      const client = await connectCluster(inputs, log);
      const config = configHash(prepared.objects.map((o) => o.object as unknown as Record<string, unknown>));
      if (inputs.plan) {
        // Read-only: GET and LIST only, no lock, no GitHub deployment, so a get/list Role suffices.
        const { planManifests } = await import('../packages/rollout/plan.ts');
        const { manifestPlanLine, renderManifestPlan } = await import('../packages/rollout/plan-summary.ts');
        const plan = await planManifests({
          client,
          app,
          environment: inputs.environment,
          namespace,
          objects,
          images,
          replicas,
          ...(inputs.config ? { config: inputs.config } : {}),
          ...(inputs.secrets ? { secrets: inputs.secrets } : {}),
          prepared,
          logger: log,
        });
        setOutput('plan', JSON.stringify({ namespace, counts: plan.counts, objects: plan.objects }));
        setOutput('plan-line', manifestPlanLine(plan));
        // What a release of this overlay records, for strategies that deploy without deploy-env.
        setOutput('config-hash', config);
        setOutput('reason', '');
        if (inputs.summary)
          await writeSummary(
            renderManifestPlan(plan, {
              app,
              environment: inputs.environment,
              ...(inputs.image ? { image: inputs.image } : {}),
            }),
          );
        log.info(`Plan: ${manifestPlanLine(plan)}; nothing was changed`);
        return;
      }

      let github:
        | { deploymentId: number; octokit: import('../packages/github/deployments.ts').Octokit }
        | undefined;
      const gh = await import('../packages/github/deployments.ts');
      const statusOf = async (
        state: 'in_progress' | 'success' | 'failure' | 'error',
        description: string,
      ) => {
        if (!github) return;
        try {
          await gh.createDeploymentStatus(
            github.octokit,
            {
              owner: run.owner,
              repo: run.repo,
              deploymentId: github.deploymentId,
              state,
              description,
              environment: inputs.environment,
              ...(inputs.environmentUrl ? { environmentUrl: inputs.environmentUrl } : {}),
              ...(run.runUrl ? { logUrl: run.runUrl } : {}),
            },
            { onRetry: (m) => log.warning(m) },
          );
        } catch (error) {
          log.warning(`Could not record the deployment status '${state}': ${(error as Error).message}`);
        }
      };

      let result: DeployResult;
      try {
        result = await deploy({
          client,
          app,
          environment: inputs.environment,
          namespace,
          createNamespace: inputs.createNamespace,
          objects,
          images,
          replicas,
          ...(inputs.config ? { config: inputs.config } : {}),
          ...(inputs.secrets ? { secrets: inputs.secrets } : {}),
          prepared,
          prune: inputs.prune,
          dryRun: inputs.dryRun,
          forceConflicts: inputs.forceConflicts,
          timeoutMs: inputs.timeout,
          stuckGraceMs: inputs.failFastAfter,
          rollbackOnFailure: inputs.rollbackOnFailure,
          ...(inputs.clusterScopedKinds ? { clusterScopedKinds: inputs.clusterScopedKinds } : {}),
          ...(inputs.lock
            ? {
                lock: lockRequest(inputs, lockHolder),
              }
            : {}),
          logger: log,
          clock,
          signal: cancelled,
          beforeApply: async () => {
            if (!inputs.githubDeployment || !inputs.githubToken || !run.repository) return;
            try {
              const octokit = gh.createOctokit({ token: inputs.githubToken, apiUrl: run.apiUrl });
              const created = await gh.createDeployment(
                octokit,
                {
                  owner: run.owner,
                  repo: run.repo,
                  ref: run.sha || run.ref,
                  environment: inputs.environment,
                  description: `${app} ${[...images.values()].join(', ')}`.trim(),
                  // What a rollback needs to redeploy this release exactly (rollback.yml).
                  payload: {
                    ...inputs.deploymentPayload,
                    app,
                    namespace,
                    images: Object.fromEntries(images),
                    cluster: client.server,
                    configHash: config,
                    revision: run.sha,
                  },
                  productionEnvironment: inputs.productionEnvironment ?? inputs.environment === 'production',
                  transientEnvironment: inputs.transientEnvironment,
                },
                { onRetry: (m) => log.warning(m) },
              );
              github = { deploymentId: created.id, octokit };
              setOutput('deployment-id', created.id);
              await statusOf('in_progress', `Deploying ${app} to ${namespace}`);
            } catch (error) {
              log.warning(
                `Could not create a GitHub deployment (the deploy goes on): ${(error as Error).message}`,
              );
            }
          },
        });
      } catch (error) {
        await statusOf('error', (error as Error).message);
        throw error;
      } finally {
        client.close();
      }

      setOutput('config-hash', config);
      const primary = result.workloads[0];
      setOutput('revision', primary?.revision ?? '');
      setOutput('previous-revision', primary?.previousRevision ?? '');
      setOutput('rollback-revision', primary?.rollbackTarget ?? '');
      setOutput('rollback-replicas', primary?.rollbackReplicas ?? '');
      setOutput('image', primary?.images[0] ?? '');
      setOutput('previous-image', primary?.previousImages[0] ?? '');
      setOutput('rolled-back', result.rolledBack);
      const notRolledBack = result.notRolledBack.map((n) => n.message).join('; ');
      const failureText = result.ok
        ? ''
        : notRolledBack
          ? `NOT ROLLED BACK: ${notRolledBack}. The release failed: ${result.failure}`
          : result.rolledBack
            ? `Rolled back to the previous version: ${result.failure}`
            : (result.failure ?? '');
      setOutput('failure', failureText);
      // NOT ROLLED BACK leads, so Slack says it first.
      setOutput('reason', failureText.split('\n')[0]!.slice(0, 500));
      setOutput('environment-url', inputs.environmentUrl ?? '');
      if (!github) setOutput('deployment-id', '');
      setOutput(
        'result',
        JSON.stringify({
          ok: result.ok,
          dryRun: result.dryRun,
          namespace: result.namespace,
          rolledBack: result.rolledBack,
          notRolledBack: result.notRolledBack,
          failure: result.failure ?? null,
          objects: result.applied.map((a) => ({ kind: a.kind, name: a.name, action: a.action })),
          workloads: result.workloads.map((w) => ({
            kind: w.kind,
            name: w.name,
            ok: w.ok,
            message: w.message,
            revision: w.revision ?? null,
            previousRevision: w.previousRevision ?? null,
            images: w.images,
            previousImages: w.previousImages,
            problems: w.problems,
            rollback: w.rollback
              ? {
                  rolledBack: w.rollback.rolledBack,
                  ok: w.rollback.ok,
                  toRevision: w.rollback.toRevision ?? null,
                  message: w.rollback.message,
                }
              : null,
          })),
        }),
      );
      const { renderDeploySummary } = await import('../packages/rollout/deploy-summary.ts');
      if (inputs.summary)
        await writeSummary(
          renderDeploySummary(result, {
            app,
            environment: inputs.environment,
            ...(inputs.environmentUrl ? { environmentUrl: inputs.environmentUrl } : {}),
            header: inputs.summaryHeader,
          }),
        );
      if (result.ok) {
        await statusOf(
          'success',
          `${app} ${primary?.revision ? `revision ${primary.revision}` : ''} is running`.trim(),
        );
        log.info(result.dryRun ? 'Dry run finished: nothing was changed' : `Deployed ${app} to ${namespace}`);
        return;
      }
      await statusOf(
        'failure',
        notRolledBack
          ? `Failed and NOT ROLLED BACK: ${result.failure}`
          : result.rolledBack
            ? `Failed and rolled back: ${result.failure}`
            : `Failed: ${result.failure}`,
      );
      const rollback = notRolledBack
        ? ` NOT ROLLED BACK: ${notRolledBack}; the failed release is still deployed.`
        : result.rolledBack
          ? ' The previous version was rolled back.'
          : result.workloads.some((w) => w.rollback && !w.rollback.rolledBack)
            ? ` ${result.workloads.find((w) => w.rollback && !w.rollback.rolledBack)!.rollback!.message}.`
            : '';
      throw new PipelineError(`Deploy to ${inputs.environment} failed: ${result.failure}.${rollback}`);
    },
  );
}
