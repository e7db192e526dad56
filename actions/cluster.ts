import type { Logger } from '../packages/core/index.ts';
import type { KubeClient } from '../packages/kube/client.ts';

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
