/**
 * KWOK stages that give pods on the real control plane the same image behaviours as kube-sim:
 * which image crashes, fails to pull or never becomes ready is decided by the same patterns, so a
 * test can run one failure scenario on both kinds of cluster.
 *
 * KWOK matches stages with jq (gojq) selectors over the whole object. Every pod stage here
 * selects on one "class" expression that maps a pod to the first behaviour whose pattern matches
 * one of its container images (kube-sim's lookup rule), or to "default".
 */
import { DEFAULT_BEHAVIOUR, globToRegExp } from '../kube-sim/behaviour.ts';
import type { ImageBehaviour } from '../kube-sim/types.ts';

export interface StageOptions {
  images: ImageBehaviour[];
  /** Simulated milliseconds run this many times faster, as in kube-sim (default 1). */
  timeScale: number;
  /** What the nodes report as their kubelet version (default: KWOK's own version). */
  kubeletVersion?: string;
}

/** Pods whose image matches one of these are never scheduled (see the admission webhook). */
export function unschedulablePatterns(images: ImageBehaviour[]): RegExp[] {
  return images.filter((b) => b.mode === 'unschedulable').map((b) => patternRegExp(b.pattern));
}

function patternRegExp(pattern: string | RegExp): RegExp {
  return typeof pattern === 'string' ? globToRegExp(pattern) : pattern;
}

/** A RegExp source in the RE2 dialect gojq's `test` uses (the patterns we use are plain). */
function re2(re: RegExp): string {
  if (/\(\?[=!<]|\\[1-9]/.test(re.source)) {
    throw new Error(
      `image pattern ${re} uses look-around or back-references, which KWOK's regexp cannot run`,
    );
  }
  return (re.flags.includes('i') ? '(?i)' : '') + re.source;
}

function classExpression(images: ImageBehaviour[]): string {
  if (images.length === 0) return '"default"';
  const branches = images
    .map(
      (b, i) =>
        `${i === 0 ? 'if' : 'elif'} test(${JSON.stringify(re2(patternRegExp(b.pattern)))}) then "b${i}"`,
    )
    .join(' ');
  return `[.spec.containers[].image | ${branches} else "default" end] | map(select(. != "default")) | (.[0] // "default")`;
}

const quoteYaml = (s: string) => `'${s.replaceAll("'", "''")}'`;

interface Selector {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

function stage(
  name: string,
  kind: 'Pod' | 'Node',
  selectors: Selector[],
  delayMs: number,
  next: string,
): string {
  const lines = [
    'apiVersion: kwok.x-k8s.io/v1alpha1',
    'kind: Stage',
    `metadata: { name: ${name} }`,
    'spec:',
    `  resourceRef: { apiGroup: v1, kind: ${kind} }`,
    '  selector:',
    '    matchExpressions:',
  ];
  for (const s of selectors) {
    lines.push(`    - key: ${quoteYaml(s.key)}`, `      operator: ${s.operator}`);
    if (s.values) lines.push(`      values: [${s.values.map(quoteYaml).join(', ')}]`);
  }
  if (delayMs > 0) lines.push('  delay:', `    durationMilliseconds: ${Math.round(delayMs)}`);
  lines.push('  next:', ...next.split('\n').map((l) => (l ? `    ${l}` : l)));
  return lines.join('\n');
}

const READY = '.status.conditions[]? | select(.type == "Ready") | .status';

// The rest of a pod's status once it runs: host and pod addresses from KWOK's allocator.
const ADDRESSES = `      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
      startTime: {{ $now | Quote }}`;

function podStatus(opts: { phase: string; ready: boolean; container: string }): string {
  const ready = opts.ready ? 'True' : 'False';
  return `statusTemplate: |
      {{ $now := Now }}
      phase: ${opts.phase}
      conditions:
      - { type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }} }
      - { type: ContainersReady, status: "${ready}", lastTransitionTime: {{ $now | Quote }} }
      - { type: Ready, status: "${ready}", lastTransitionTime: {{ $now | Quote }} }
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        imageID: {{ printf "%s@sha256:%s" .image ( sha256sum .image ) | Quote }}
${opts.container}
      {{ end }}
${ADDRESSES}`;
}

const RUNNING = (ready: boolean) => `        ready: ${ready}
        started: true
        restartCount: 0
        state: { running: { startedAt: {{ $now | Quote }} } }`;

const CRASHED = `        ready: false
        started: false
        restartCount: 1
        lastState: { terminated: { exitCode: 1, reason: Error, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }} } }
        state: { waiting: { reason: CrashLoopBackOff, message: {{ printf "back-off 10s restarting failed container=%s" .name | Quote }} } }`;

const waitingPull = (reason: string) => `        ready: false
        started: false
        restartCount: 0
        state: { waiting: { reason: ${reason}, message: {{ printf "${reason === 'ErrImagePull' ? 'failed to pull and unpack image \\"%s\\": not found' : 'Back-off pulling image \\"%s\\"'}" .image | Quote }} } }`;

/** Pod stages for the behaviour table, then the default, completion and graceful deletion. */
export function podStages({ images, timeScale }: StageOptions): string[] {
  const cls = classExpression(images);
  const scaled = (ms: number) => ms / Math.max(timeScale, 1e-9);
  const pending = (klass: string): Selector[] => [
    { key: '.metadata.deletionTimestamp', operator: 'DoesNotExist' },
    { key: cls, operator: 'In', values: [klass] },
    { key: '.status.phase', operator: 'In', values: ['Pending'] },
    { key: '.status.containerStatuses', operator: 'DoesNotExist' },
  ];
  const stages: string[] = [];
  const behaviours = [
    ...images.map((b, i) => ({ b, klass: `b${i}` })),
    { b: { pattern: '*' } as ImageBehaviour, klass: 'default' },
  ];
  for (const { b, klass } of behaviours) {
    const pull = b.pullMs ?? DEFAULT_BEHAVIOUR.pullMs;
    const start = pull + (b.startupMs ?? DEFAULT_BEHAVIOUR.startupMs);
    switch (b.mode ?? 'ready') {
      case 'ready':
        stages.push(
          stage(
            `pod-ready-${klass}`,
            'Pod',
            pending(klass),
            scaled(start + (b.readyMs ?? DEFAULT_BEHAVIOUR.readyMs)),
            podStatus({ phase: 'Running', ready: true, container: RUNNING(true) }),
          ),
        );
        break;
      case 'never-ready':
        stages.push(
          stage(
            `pod-never-ready-${klass}`,
            'Pod',
            pending(klass),
            scaled(start),
            podStatus({ phase: 'Running', ready: false, container: RUNNING(false) }),
          ),
        );
        break;
      case 'crash':
        stages.push(
          stage(
            `pod-crash-${klass}`,
            'Pod',
            pending(klass),
            scaled(start + (b.crashAfterMs ?? DEFAULT_BEHAVIOUR.crashAfterMs)),
            podStatus({ phase: 'Running', ready: false, container: CRASHED }),
          ),
        );
        break;
      case 'pull-error':
        stages.push(
          stage(
            `pod-pull-error-${klass}`,
            'Pod',
            pending(klass),
            scaled(pull),
            podStatus({ phase: 'Pending', ready: false, container: waitingPull('ErrImagePull') }),
          ),
        );
        stages.push(
          stage(
            `pod-pull-backoff-${klass}`,
            'Pod',
            [
              { key: '.metadata.deletionTimestamp', operator: 'DoesNotExist' },
              { key: cls, operator: 'In', values: [klass] },
              {
                key: '.status.containerStatuses[].state.waiting.reason',
                operator: 'In',
                values: ['ErrImagePull'],
              },
            ],
            scaled(1000),
            podStatus({ phase: 'Pending', ready: false, container: waitingPull('ImagePullBackOff') }),
          ),
        );
        break;
      case 'unschedulable':
        // Never reaches a node: the admission webhook gives such pods a node selector no node has.
        break;
    }
  }
  // Pods that do not restart (Jobs) finish once they ran: the kubelet would report Succeeded.
  stages.push(
    stage(
      'pod-complete',
      'Pod',
      [
        { key: '.metadata.deletionTimestamp', operator: 'DoesNotExist' },
        { key: '.status.phase', operator: 'In', values: ['Running'] },
        { key: '.spec.restartPolicy', operator: 'In', values: ['Never', 'OnFailure'] },
        { key: READY, operator: 'In', values: ['True'] },
      ],
      scaled(DEFAULT_BEHAVIOUR.crashAfterMs),
      `statusTemplate: |
      {{ $now := Now }}
      phase: Succeeded
      conditions:
      - { type: Ready, status: "False", reason: PodCompleted, lastTransitionTime: {{ $now | Quote }} }
      - { type: ContainersReady, status: "False", reason: PodCompleted, lastTransitionTime: {{ $now | Quote }} }
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: false
        restartCount: 0
        state: { terminated: { exitCode: 0, reason: Completed, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }} } }
      {{ end }}`,
    ),
  );
  // Graceful deletion: the API server sets deletionTimestamp and waits for the node; our
  // containers exit on SIGTERM at once, so the node confirms after a short stop.
  stages.push(
    stage(
      'pod-delete',
      'Pod',
      [{ key: '.metadata.deletionTimestamp', operator: 'Exists' }],
      Math.min(scaled(1000), 1000),
      'delete: true',
    ),
  );
  return stages;
}

/** Nodes become Ready with room for many pods and keep their heartbeat. */
function nodeStages(kubeletVersion?: string): string[] {
  const conditions = `conditions:
      - { type: Ready, status: "True", reason: KubeletReady, message: kubelet is posting ready status, lastHeartbeatTime: {{ $now | Quote }}, lastTransitionTime: {{ $since | Quote }} }
      - { type: MemoryPressure, status: "False", reason: KubeletHasSufficientMemory, message: kubelet has sufficient memory available, lastHeartbeatTime: {{ $now | Quote }}, lastTransitionTime: {{ $since | Quote }} }
      - { type: DiskPressure, status: "False", reason: KubeletHasNoDiskPressure, message: kubelet has no disk pressure, lastHeartbeatTime: {{ $now | Quote }}, lastTransitionTime: {{ $since | Quote }} }
      - { type: PIDPressure, status: "False", reason: KubeletHasSufficientPID, message: kubelet has sufficient PID available, lastHeartbeatTime: {{ $now | Quote }}, lastTransitionTime: {{ $since | Quote }} }
      - { type: NetworkUnavailable, status: "False", reason: RouteCreated, message: fake network, lastHeartbeatTime: {{ $now | Quote }}, lastTransitionTime: {{ $since | Quote }} }`;
  const init = `statusTemplate: |
      {{ $now := Now }}
      {{ $since := or .metadata.creationTimestamp $now }}
      phase: Running
      ${conditions}
      addresses:
      - { type: InternalIP, address: {{ NodeIP | Quote }} }
      - { type: Hostname, address: {{ .metadata.name | Quote }} }
      capacity: { cpu: "64", memory: 256Gi, pods: "250", ephemeral-storage: 1Ti }
      allocatable: { cpu: "64", memory: 256Gi, pods: "250", ephemeral-storage: 1Ti }
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } }
      nodeInfo:
        architecture: amd64
        operatingSystem: linux
        kubeletVersion: ${kubeletVersion ? JSON.stringify(kubeletVersion) : '{{ Version | Quote }}'}
        kubeProxyVersion: ""
        containerRuntimeVersion: kwok
        kernelVersion: kwok
        osImage: kwok
        machineID: kwok
        systemUUID: kwok
        bootID: kwok`;
  return [
    stage('node-initialize', 'Node', [{ key: READY, operator: 'NotIn', values: ['True'] }], 0, init),
    stage(
      'node-heartbeat',
      'Node',
      [
        { key: '.status.phase', operator: 'In', values: ['Running'] },
        { key: READY, operator: 'In', values: ['True'] },
      ],
      20_000,
      `statusTemplate: |
      {{ $now := Now }}
      {{ $since := or .metadata.creationTimestamp $now }}
      ${conditions}`,
    ),
  ];
}

export function stagesConfig(opts: StageOptions): string {
  return `${[...nodeStages(opts.kubeletVersion), ...podStages(opts)].join('\n---\n')}\n`;
}
