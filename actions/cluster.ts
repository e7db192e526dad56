import { parse as parseYaml } from 'yaml';
import { input } from '../packages/config/index.ts';
import type { Logger } from '../packages/core/index.ts';
import type { KubeClient } from '../packages/kube/client.ts';
import { kubeconfigTextSecrets, looksLikeKubeconfigContent } from '../packages/kube/kubeconfig-secrets.ts';
import type { LockRequest } from '../packages/kube/lease.ts';

/**
 * The inputs every step that reaches a cluster reads. A kubeconfig given as YAML has its
 * credentials masked before anything is parsed, value by value: masking it line by line would
 * also mask `kind: Config` and `users:` wherever a log line says them.
 */
export const clusterInputs = {
  kubeconfig: {
    ...input.string({ accepted: 'a kubeconfig file path, or the kubeconfig YAML itself' }),
    secretsOf: (raw: string): string[] => {
      if (!looksLikeKubeconfigContent(raw)) return [];
      let doc: unknown;
      try {
        doc = parseYaml(raw);
      } catch {
        doc = undefined;
      }
      return [raw, ...kubeconfigTextSecrets(raw, doc)];
    },
  },
  context: input.string(),
};

/** The inputs every step that changes workloads reads: its deadline, fail-fast grace and lock. */
export const rolloutInputs = {
  timeout: input.duration({ default: '10m', minMs: 1000 }),
  'fail-fast-after': input.duration({ default: '30s' }),
  'lock-timeout': input.duration({ default: '10m' }),
  'lock-lease': input.duration({ default: '60s', minMs: 1000 }),
};

export function lockRequest(inputs: { lockTimeout: number; lockLease: number }, holder: string): LockRequest {
  return { holder, waitTimeoutMs: inputs.lockTimeout, leaseDurationMs: inputs.lockLease };
}

/**
 * The cluster client of an action step, from the kubeconfig input (a path or the YAML itself) or
 * the runner's default, with every credential it holds masked before anything can log it. The
 * Kubernetes client loads here, on first use, so steps that never reach a cluster start fast.
 */
export async function connectCluster(
  inputs: { kubeconfig?: string | undefined; context?: string | undefined },
  log: Logger,
): Promise<KubeClient> {
  const { KubeClient, kubeconfigSecrets, loadKubeConfig } = await import('../packages/kube/client.ts');
  const kc = loadKubeConfig({
    ...(inputs.kubeconfig ? { kubeconfig: inputs.kubeconfig } : {}),
    ...(inputs.context ? { context: inputs.context } : {}),
  });
  for (const secret of kubeconfigSecrets(kc)) log.mask(secret);
  return new KubeClient(kc, { logger: log });
}
