/**
 * Regenerates openapi.json: the real kube-apiserver's OpenAPI v3 schemas of the kinds kube-sim
 * serves, trimmed to what validation and server-side apply read (types, formats, properties,
 * list types and keys). The source is either a running cluster or the OpenAPI documents that the
 * pinned k8s.io/kubernetes module publishes (api/openapi-spec/v3, what its server serves):
 *
 *   node tooling/kube-sim/schemas/generate.ts                       # from tooling/control-plane's module
 *   node tooling/kube-sim/schemas/generate.ts --kubeconfig <file>   # from a running cluster
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as https from 'node:https';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { apiVersionOf, RESOURCES } from '../resources.ts';

type Doc = { components?: { schemas?: Record<string, Schema> } };
type Schema = Record<string, unknown>;

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');

const KEEP = [
  'type',
  'format',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
  'x-kubernetes-int-or-string',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-patch-merge-key',
  'x-kubernetes-patch-strategy',
];

function docPath(group: string, version: string): string {
  return group ? `apis/${group}/${version}` : `api/${version}`;
}

async function fromCluster(kubeconfig: string, paths: string[]): Promise<{ source: string; docs: Doc[] }> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const server = new URL(kc.getCurrentCluster()!.server);
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const get = (p: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const req = https.get({ ...opts, hostname: server.hostname, port: server.port, path: p }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`GET ${p}: ${res.statusCode}`));
          else resolve(JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>);
        });
      });
      req.on('error', reject);
    });
  const version = (await get('/version'))['gitVersion'];
  const index = (await get('/openapi/v3'))['paths'] as Record<string, { serverRelativeURL: string }>;
  const docs: Doc[] = [];
  for (const p of paths) if (index[p]) docs.push((await get(index[p].serverRelativeURL)) as Doc);
  return { source: `kube-apiserver ${version} /openapi/v3`, docs };
}

function fromModule(paths: string[]): { source: string; docs: Doc[] } {
  const info = JSON.parse(
    execFileSync('go', ['mod', 'download', '-json', 'k8s.io/kubernetes'], {
      cwd: join(root, 'tooling', 'control-plane'),
      encoding: 'utf8',
    }),
  ) as { Dir: string; Version: string };
  const docs = paths.map(
    (p) =>
      JSON.parse(
        readFileSync(
          join(info.Dir, 'api', 'openapi-spec', 'v3', `${p.replace(/\//g, '__')}_openapi.json`),
          'utf8',
        ),
      ) as Doc,
  );
  return { source: `k8s.io/kubernetes ${info.Version} api/openapi-spec/v3`, docs };
}

function refName(s: Schema): string | undefined {
  const ref = (s['$ref'] ?? (Array.isArray(s['allOf']) ? (s['allOf'][0] as Schema)['$ref'] : undefined)) as
    | string
    | undefined;
  return ref?.replace('#/components/schemas/', '');
}

function trim(s: Schema, want: Set<string>): Schema {
  const ref = refName(s);
  if (ref) {
    want.add(ref);
    const out: Schema = { $ref: ref };
    for (const k of KEEP) if (s[k] !== undefined) out[k] = s[k];
    return out;
  }
  const out: Schema = {};
  for (const k of KEEP) if (s[k] !== undefined) out[k] = s[k];
  if (s['properties']) {
    const props: Record<string, Schema> = {};
    for (const [k, v] of Object.entries(s['properties'] as Record<string, Schema>)) props[k] = trim(v, want);
    out['properties'] = props;
  }
  if (s['items']) out['items'] = trim(s['items'] as Schema, want);
  if (s['additionalProperties'] && typeof s['additionalProperties'] === 'object')
    out['additionalProperties'] = trim(s['additionalProperties'] as Schema, want);
  return out;
}

const args = process.argv.slice(2);
const kubeconfig = args[0] === '--kubeconfig' ? args[1] : undefined;
const builtIn = RESOURCES.filter((r) => !r.group.endsWith('gateway.networking.k8s.io'));
const paths = [...new Set(builtIn.map((r) => docPath(r.group, r.version)))];
const { source, docs } = kubeconfig ? await fromCluster(kubeconfig, paths) : fromModule(paths);
const all: Record<string, Schema> = {};
for (const d of docs) Object.assign(all, d.components?.schemas ?? {});
const kinds: Record<string, string> = {};
for (const [name, s] of Object.entries(all)) {
  const gvks = (s['x-kubernetes-group-version-kind'] ?? []) as {
    group: string;
    version: string;
    kind: string;
  }[];
  for (const g of gvks) {
    const key = `${g.group ? `${g.group}/` : ''}${g.version}/${g.kind}`;
    if (builtIn.some((r) => `${apiVersionOf(r)}/${r.kind}` === key)) kinds[key] = name;
  }
}
const want = new Set(Object.values(kinds));
const definitions: Record<string, Schema> = {};
for (let grew = true; grew; ) {
  grew = false;
  for (const name of [...want]) {
    if (definitions[name] || !all[name]) continue;
    definitions[name] = trim(all[name], want);
    grew = true;
  }
}
const sorted = Object.fromEntries(Object.entries(definitions).sort(([a], [b]) => a.localeCompare(b)));
const out = { source, kinds: Object.fromEntries(Object.entries(kinds).sort()), definitions: sorted };
writeFileSync(join(here, 'openapi.json'), `${JSON.stringify(out)}\n`);
console.log(
  `openapi.json: ${Object.keys(kinds).length} kinds, ${Object.keys(sorted).length} definitions from ${source}`,
);
