/** Server-side printing (`Accept: application/json;as=Table`), the columns `kubectl get` shows. */
import { isObject } from './patch.ts';
import type { ResourceInfo } from './resources.ts';
import { selectorString } from './selectors.ts';
import type { JsonObject, KubeObject } from './types.ts';

interface Column {
  name: string;
  type: string;
  format?: string;
  priority?: number;
  cell: (o: KubeObject, now: number) => unknown;
}

function age(from: string | undefined, now: number): string {
  if (!from) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(from)) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60 ? `${s % 60}s` : ''}`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

const get = (o: unknown, ...path: string[]): unknown => {
  let c = o;
  for (const p of path) c = isObject(c) ? c[p] : undefined;
  return c;
};
const num = (o: unknown, ...path: string[]) => Number(get(o, ...path) ?? 0);
const name: Column = { name: 'Name', type: 'string', format: 'name', cell: (o) => o.metadata.name };
const ageCol: Column = {
  name: 'Age',
  type: 'string',
  cell: (o, now) => age(o.metadata.creationTimestamp, now),
};

function podStatus(o: KubeObject): string {
  if (o.metadata.deletionTimestamp) return 'Terminating';
  const statuses = (get(o, 'status', 'containerStatuses') ?? []) as JsonObject[];
  for (const c of statuses) {
    const waiting = get(c, 'state', 'waiting', 'reason');
    if (waiting) return String(waiting);
    const term = get(c, 'state', 'terminated', 'reason');
    if (term && get(o, 'status', 'phase') !== 'Succeeded') return String(term);
  }
  const conds = (get(o, 'status', 'conditions') ?? []) as JsonObject[];
  const sched = conds.find((c) => c['type'] === 'PodScheduled' && c['status'] === 'False');
  if (sched) return 'Pending';
  const phase = String(get(o, 'status', 'phase') ?? 'Pending');
  return phase === 'Succeeded' ? 'Completed' : phase;
}

const COLUMNS: Record<string, Column[]> = {
  Pod: [
    name,
    {
      name: 'Ready',
      type: 'string',
      cell: (o) => {
        const cs = (get(o, 'status', 'containerStatuses') ?? []) as JsonObject[];
        const total = ((get(o, 'spec', 'containers') ?? []) as unknown[]).length;
        return `${cs.filter((c) => c['ready']).length}/${total}`;
      },
    },
    { name: 'Status', type: 'string', cell: podStatus },
    {
      name: 'Restarts',
      type: 'string',
      cell: (o) =>
        String(
          ((get(o, 'status', 'containerStatuses') ?? []) as JsonObject[]).reduce(
            (n, c) => n + Number(c['restartCount'] ?? 0),
            0,
          ),
        ),
    },
    ageCol,
    { name: 'IP', type: 'string', priority: 1, cell: (o) => get(o, 'status', 'podIP') ?? '<none>' },
    { name: 'Node', type: 'string', priority: 1, cell: (o) => get(o, 'spec', 'nodeName') ?? '<none>' },
  ],
  Deployment: [
    name,
    {
      name: 'Ready',
      type: 'string',
      cell: (o) => `${num(o, 'status', 'readyReplicas')}/${num(o, 'spec', 'replicas')}`,
    },
    { name: 'Up-to-date', type: 'integer', cell: (o) => num(o, 'status', 'updatedReplicas') },
    { name: 'Available', type: 'integer', cell: (o) => num(o, 'status', 'availableReplicas') },
    ageCol,
    {
      name: 'Containers',
      type: 'string',
      priority: 1,
      cell: (o) =>
        ((get(o, 'spec', 'template', 'spec', 'containers') ?? []) as JsonObject[])
          .map((c) => c['name'])
          .join(','),
    },
    {
      name: 'Images',
      type: 'string',
      priority: 1,
      cell: (o) =>
        ((get(o, 'spec', 'template', 'spec', 'containers') ?? []) as JsonObject[])
          .map((c) => c['image'])
          .join(','),
    },
    {
      name: 'Selector',
      type: 'string',
      priority: 1,
      cell: (o) => selectorString(get(o, 'spec', 'selector') as never),
    },
  ],
  ReplicaSet: [
    name,
    { name: 'Desired', type: 'integer', cell: (o) => num(o, 'spec', 'replicas') },
    { name: 'Current', type: 'integer', cell: (o) => num(o, 'status', 'replicas') },
    { name: 'Ready', type: 'integer', cell: (o) => num(o, 'status', 'readyReplicas') },
    ageCol,
  ],
  Service: [
    name,
    { name: 'Type', type: 'string', cell: (o) => get(o, 'spec', 'type') ?? 'ClusterIP' },
    { name: 'Cluster-IP', type: 'string', cell: (o) => get(o, 'spec', 'clusterIP') ?? '<none>' },
    { name: 'External-IP', type: 'string', cell: () => '<none>' },
    {
      name: 'Port(s)',
      type: 'string',
      cell: (o) =>
        ((get(o, 'spec', 'ports') ?? []) as JsonObject[])
          .map((p) => `${p['port']}/${p['protocol'] ?? 'TCP'}`)
          .join(',') || '<none>',
    },
    ageCol,
  ],
  Endpoints: [
    name,
    {
      name: 'Endpoints',
      type: 'string',
      cell: (o) => {
        const out: string[] = [];
        for (const s of (get(o, 'subsets') ?? []) as JsonObject[]) {
          for (const a of (s['addresses'] ?? []) as JsonObject[]) {
            for (const p of (s['ports'] ?? []) as JsonObject[]) out.push(`${a['ip']}:${p['port']}`);
          }
        }
        return out.join(',') || '<none>';
      },
    },
    ageCol,
  ],
  Job: [
    name,
    {
      name: 'Status',
      type: 'string',
      cell: (o) => {
        const conds = (get(o, 'status', 'conditions') ?? []) as JsonObject[];
        if (conds.some((c) => c['type'] === 'Complete' && c['status'] === 'True')) return 'Complete';
        if (conds.some((c) => c['type'] === 'Failed' && c['status'] === 'True')) return 'Failed';
        return 'Running';
      },
    },
    {
      name: 'Completions',
      type: 'string',
      cell: (o) => `${num(o, 'status', 'succeeded')}/${num(o, 'spec', 'completions') || 1}`,
    },
    ageCol,
  ],
  Namespace: [
    name,
    { name: 'Status', type: 'string', cell: (o) => get(o, 'status', 'phase') ?? 'Active' },
    ageCol,
  ],
  ConfigMap: [
    name,
    { name: 'Data', type: 'integer', cell: (o) => Object.keys((get(o, 'data') ?? {}) as object).length },
    ageCol,
  ],
  Secret: [
    name,
    { name: 'Type', type: 'string', cell: (o) => get(o, 'type') ?? 'Opaque' },
    { name: 'Data', type: 'integer', cell: (o) => Object.keys((get(o, 'data') ?? {}) as object).length },
    ageCol,
  ],
  Event: [
    { name: 'Last Seen', type: 'string', cell: (o, now) => age(get(o, 'lastTimestamp') as string, now) },
    { name: 'Type', type: 'string', cell: (o) => get(o, 'type') },
    { name: 'Reason', type: 'string', cell: (o) => get(o, 'reason') },
    {
      name: 'Object',
      type: 'string',
      cell: (o) =>
        `${String(get(o, 'involvedObject', 'kind')).toLowerCase()}/${get(o, 'involvedObject', 'name')}`,
    },
    { name: 'Message', type: 'string', cell: (o) => get(o, 'message') },
  ],
};

export function wantsTable(accept: string | undefined): boolean {
  return !!accept && /as=Table/.test(accept) && /g=meta\.k8s\.io/.test(accept);
}

export function toTable(
  r: ResourceInfo,
  objects: KubeObject[],
  resourceVersion: string,
  now: number,
  listMeta: JsonObject = {},
): JsonObject {
  const columns = COLUMNS[r.kind] ?? [name, ageCol];
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion, ...listMeta },
    columnDefinitions: columns.map((c) => ({
      name: c.name,
      type: c.type,
      format: c.format ?? '',
      description: c.name,
      priority: c.priority ?? 0,
    })),
    rows: objects.map((o) => ({
      cells: columns.map((c) => c.cell(o, now) ?? ''),
      object: {
        kind: 'PartialObjectMetadata',
        apiVersion: 'meta.k8s.io/v1',
        metadata: o.metadata,
      },
    })),
  };
}
