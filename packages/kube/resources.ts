import type { KubeClient } from './client.ts';

/** A Kubernetes object as we handle it: loose, but with the fields every object has. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
    uid?: string;
    generation?: number;
    ownerReferences?: { kind: string; name: string; uid: string; controller?: boolean }[];
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export interface ResourceType {
  group: string;
  version: string;
  kind: string;
  plural: string;
  namespaced: boolean;
  verbs: string[];
}

/**
 * What the API server serves, from its discovery documents, fetched once per group version and
 * only for the group versions the manifests use.
 */
export class ResourceCatalog {
  private readonly client: KubeClient;
  private readonly cache = new Map<string, Promise<ResourceType[] | undefined>>();

  constructor(client: KubeClient) {
    this.client = client;
  }

  private groupVersion(apiVersion: string): Promise<ResourceType[] | undefined> {
    let entry = this.cache.get(apiVersion);
    if (!entry) {
      const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
      const path = group ? `/apis/${group}/${version}` : `/api/${version}`;
      entry = this.client
        .getJson<{ resources?: { name: string; kind: string; namespaced: boolean; verbs?: string[] }[] }>(
          path,
        )
        .then((doc) =>
          doc?.resources
            ?.filter((r) => !r.name.includes('/'))
            .map((r) => ({
              group: group!,
              version: version!,
              kind: r.kind,
              plural: r.name,
              namespaced: r.namespaced,
              verbs: r.verbs ?? [],
            })),
        );
      this.cache.set(apiVersion, entry);
    }
    return entry;
  }

  async lookup(apiVersion: string, kind: string): Promise<ResourceType | undefined> {
    return (await this.groupVersion(apiVersion))?.find((r) => r.kind === kind);
  }

  /** Known kinds of an API version, for error messages. */
  async kindsOf(apiVersion: string): Promise<string[]> {
    return ((await this.groupVersion(apiVersion)) ?? []).map((r) => r.kind);
  }
}

export function collectionPath(type: ResourceType, namespace: string | undefined): string {
  const base = type.group ? `/apis/${type.group}/${type.version}` : `/api/${type.version}`;
  return type.namespaced
    ? `${base}/namespaces/${encodeURIComponent(namespace ?? 'default')}/${type.plural}`
    : `${base}/${type.plural}`;
}

export function objectPath(type: ResourceType, namespace: string | undefined, name: string): string {
  return `${collectionPath(type, namespace)}/${encodeURIComponent(name)}`;
}
