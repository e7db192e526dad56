import { spawn } from 'node:child_process';
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { existsSync, globSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { errorMessage, formatDuration, InputError, PipelineError } from '../core/index.ts';
import { checkInsideWorkspace } from '../core/paths.ts';
import type { KubeObject } from './resources.ts';

/**
 * How many alias uses one YAML document may expand: plenty for hand-written anchors, far below
 * what an alias bomb (a billion strings from a few lines) needs.
 */
const MAX_YAML_ALIASES = 100;
/** Limits on `kubectl kustomize`: an overlay from any branch must not take the runner down. */
const KUSTOMIZE_TIMEOUT_MS = 120_000;
const KUSTOMIZE_MAX_RSS_BYTES = 1024 * 1024 * 1024;
const KUSTOMIZE_MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

/** An object from the manifests, with where it came from so errors can point at it. */
export interface SourcedObject {
  object: KubeObject;
  source: string;
}

class ManifestError extends PipelineError {}

function docLabel(file: string, index: number, cwd: string): string {
  return `${relative(cwd, file) || file} (document ${index + 1})`;
}

/** Parses a multi-document YAML text; every malformed document is reported with file and index. */
export function parseManifestText(text: string, file: string, cwd: string): SourcedObject[] {
  const out: SourcedObject[] = [];
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) throw new ManifestError(`${file}: not YAML`);
  docs.forEach((doc, index) => {
    const where = docLabel(file, index, cwd);
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      const line = e.linePos?.[0] ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
      throw new ManifestError(`${where}: invalid YAML${line}: ${e.message.split('\n')[0]}`);
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
    } catch (error) {
      // The yaml package refuses excessive aliasing with a ReferenceError: say what it means.
      throw new ManifestError(
        /alias/i.test(errorMessage(error))
          ? `${where}: YAML aliases expand more than ${MAX_YAML_ALIASES} times (an alias bomb?); write the values out or use fewer aliases`
          : `${where}: invalid YAML: ${errorMessage(error).split('\n')[0]}`,
      );
    }
    if (value === null || value === undefined) return;
    const push = (obj: unknown, label: string) => {
      if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
        throw new ManifestError(
          `${label}: not a Kubernetes object (a map with apiVersion, kind and metadata)`,
        );
      const o = obj as KubeObject;
      if (typeof o.apiVersion !== 'string' || !o.apiVersion)
        throw new ManifestError(`${label}: has no apiVersion`);
      if (typeof o.kind !== 'string' || !o.kind) throw new ManifestError(`${label}: has no kind`);
      if (o.kind.endsWith('List') && Array.isArray((o as { items?: unknown }).items)) {
        for (const [i, item] of (o as unknown as { items: unknown[] }).items.entries())
          push(item, `${label} item ${i + 1}`);
        return;
      }
      if (
        typeof o.metadata !== 'object' ||
        o.metadata === null ||
        typeof o.metadata.name !== 'string' ||
        !o.metadata.name
      ) {
        throw new ManifestError(`${label}: ${o.kind} has no metadata.name`);
      }
      out.push({ object: o, source: label });
    };
    push(value, where);
  });
  return out;
}

/** Files, directories (their *.yaml, *.yml and *.json, sorted) and globs, relative to cwd. */
function expandManifestPaths(
  patterns: string[],
  cwd: string,
  inputName = 'manifests',
  guard: PathGuard = {},
): string[] {
  const files: string[] = [];
  const check = (given: string, path: string) => guardPath(given, path, cwd, inputName, guard);
  for (const pattern of patterns) {
    const matches = /[*?[{]/.test(pattern)
      ? globSync(pattern, { cwd }).map((p) => resolve(cwd, p))
      : [resolve(cwd, pattern)];
    if (matches.length === 0)
      throw new InputError(
        inputName,
        `has the pattern ${JSON.stringify(pattern)}, which matches no file`,
        'files, directories or globs of YAML manifests',
      );
    for (const path of matches.sort()) {
      check(pattern, path);
      if (!existsSync(path))
        throw new InputError(
          inputName,
          `names ${JSON.stringify(pattern)}, which does not exist`,
          'files, directories or globs of YAML manifests',
        );
      if (statSync(path).isDirectory()) {
        const inDir = globSync('**/*.{yaml,yml,json}', { cwd: path })
          .filter((f) => !f.split('/').includes('node_modules') && !/(^|\/)kustomization\.ya?ml$/.test(f))
          .sort()
          .map((f) => join(path, f));
        for (const f of inDir) check(relative(cwd, f), f);
        if (inDir.length === 0)
          throw new InputError(
            inputName,
            `names the directory ${JSON.stringify(pattern)}, which has no YAML files`,
            'a directory with *.yaml files',
          );
        files.push(...inDir);
      } else {
        files.push(path);
      }
    }
  }
  return [...new Set(files)];
}

/**
 * Whether paths may leave the workspace (cwd): by default they may not, and a refusal names the
 * input that allows them when the step has one.
 */
export interface PathGuard {
  allowOutsideWorkspace?: boolean;
  /** The step has the allow-paths-outside-workspace input (deploy-env does). */
  hasAllowInput?: boolean;
}

function guardPath(given: string, path: string, cwd: string, inputName: string, guard: PathGuard): void {
  try {
    checkInsideWorkspace(given, path, cwd, inputName, guard.allowOutsideWorkspace ?? false);
  } catch (error) {
    if (guard.hasAllowInput || !(error instanceof InputError)) throw error;
    throw new InputError(inputName, error.problem, 'paths inside the workspace');
  }
}

const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];

/** The local paths a kustomization refers to: resources, bases, components, patches, generator files. */
function kustomizationReferences(doc: Record<string, unknown>): string[] {
  const out: string[] = [];
  const strings = (v: unknown) =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  const paths = (v: unknown) =>
    Array.isArray(v)
      ? v.flatMap((x) =>
          typeof x === 'string'
            ? [x]
            : x && typeof (x as { path?: unknown }).path === 'string'
              ? [(x as { path: string }).path]
              : [],
        )
      : [];
  for (const key of [
    'resources',
    'bases',
    'components',
    'crds',
    'configurations',
    'generators',
    'transformers',
    'validators',
  ])
    out.push(...strings(doc[key]));
  for (const key of ['patches', 'patchesStrategicMerge', 'patchesJson6902', 'replacements'])
    out.push(...paths(doc[key]));
  for (const key of ['configMapGenerator', 'secretGenerator'])
    for (const gen of Array.isArray(doc[key]) ? (doc[key] as Record<string, unknown>[]) : []) {
      // files: [key=path] or [path]; envs: [path]; env: path
      out.push(...strings(gen?.files).map((f) => f.slice(f.indexOf('=') + 1)), ...strings(gen?.envs));
      if (typeof gen?.env === 'string') out.push(gen.env);
    }
  const openapi = doc.openapi as { path?: unknown } | undefined;
  if (typeof openapi?.path === 'string') out.push(openapi.path);
  // A remote base (a URL, a git reference) is not a path of this runner; an inline patch is text.
  return out.filter(
    (ref) =>
      !/^[a-z][a-z0-9+.-]*:\/\/|^git@|^(github\.com|gitlab\.com|bitbucket\.org)\//i.test(ref) &&
      !ref.includes('\n'),
  );
}

/**
 * The workspace rule applied to everything kustomize will load, not only the overlay: a base,
 * component or patch file that is (or is reached through) a symlink out of the workspace is
 * refused, walking the kustomizations from the overlay down, each path resolved with realpath.
 */
function guardKustomization(dir: string, cwd: string, guard: PathGuard, seen = new Set<string>()): void {
  if (guard.allowOutsideWorkspace) return;
  const real = realpathSync(dir);
  if (seen.has(real) || seen.size > 1000) return;
  seen.add(real);
  const file = KUSTOMIZATION_FILES.map((f) => join(dir, f)).find((f) => existsSync(f));
  if (!file) return;
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch {
    return; // kubectl kustomize reports the YAML it cannot read
  }
  if (!doc || typeof doc !== 'object') return;
  for (const ref of kustomizationReferences(doc as Record<string, unknown>)) {
    const target = resolve(dir, ref);
    guardPath(`${relative(cwd, file) || file}: ${ref}`, target, cwd, 'kustomize', guard);
    if (existsSync(target) && statSync(target).isDirectory()) guardKustomization(target, cwd, guard, seen);
  }
}

/** kubectl's klog prefix (`E1201 10:42:07.123456   12345 run.go:72] `), which says nothing to a reader. */
function withoutKlogPrefix(text: string): string {
  return text.replace(/^[EWIF]\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ [\w.-]+:\d+\] /gm, '');
}

async function renderKustomize(
  dir: string,
  cwd: string,
  kubectl = 'kubectl',
  guard: PathGuard = {},
): Promise<SourcedObject[]> {
  const path = resolve(cwd, dir);
  guardPath(dir, path, cwd, 'kustomize', guard);
  if (!existsSync(path) || !statSync(path).isDirectory()) {
    throw new InputError(
      'kustomize',
      `names ${JSON.stringify(dir)}, which is not a directory`,
      'a kustomize overlay directory such as k8s/staging',
    );
  }
  if (!KUSTOMIZATION_FILES.some((f) => existsSync(join(path, f)))) {
    throw new InputError(
      'kustomize',
      `names ${JSON.stringify(dir)}, which has no kustomization.yaml`,
      'a kustomize overlay directory with a kustomization.yaml',
    );
  }
  guardKustomization(path, cwd, guard);
  let stdout: string;
  try {
    stdout = await runBounded(kubectl, ['kustomize', path], {
      timeoutMs: KUSTOMIZE_TIMEOUT_MS,
      maxRssBytes: KUSTOMIZE_MAX_RSS_BYTES,
      maxOutputBytes: KUSTOMIZE_MAX_OUTPUT_BYTES,
    });
  } catch (error) {
    const e = error as { code?: string; stderr?: string; limit?: string; message: string };
    if (e.code === 'ENOENT')
      throw new ManifestError(`kubectl is needed to render kustomize overlays and was not found on PATH`);
    if (e.limit)
      throw new InputError(
        'kustomize',
        `names ${JSON.stringify(dir)}, whose rendering was stopped: ${e.limit}`,
        `an overlay that kubectl kustomize renders in under ${formatDuration(KUSTOMIZE_TIMEOUT_MS)}, within ${KUSTOMIZE_MAX_RSS_BYTES / 1024 / 1024} MiB of memory and ${KUSTOMIZE_MAX_OUTPUT_BYTES / 1024 / 1024} MiB of output`,
      );
    throw new ManifestError(
      `kustomize could not render ${dir}: ${withoutKlogPrefix((e.stderr || e.message).trim())
        .split('\n')
        .slice(0, 5)
        .join(' ')}`,
    );
  }
  return parseManifestText(stdout, `kustomize ${dir}`, cwd);
}

/**
 * Runs a command with a deadline, a memory ceiling and an output ceiling, and returns its stdout.
 * Memory is watched as the resident set size of the process in /proc (Linux, where runners are;
 * elsewhere only the deadline and output limits hold), so no privileges or shell are needed.
 * A stop by a limit rejects with `limit` saying which.
 */
export function runBounded(
  command: string,
  args: string[],
  limits: { timeoutMs: number; maxRssBytes: number; maxOutputBytes: number },
): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let outBytes = 0;
    let stderr = '';
    let limit: string | undefined;
    const stop = (why: string) => {
      if (limit) return;
      limit = why;
      child.kill('SIGKILL');
    };
    child.stdout.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > limits.maxOutputBytes) stop(`its output passed ${sizeText(limits.maxOutputBytes)}`);
      else out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 64 * 1024) stderr += chunk.toString('utf8');
    });
    const deadline = setTimeout(
      () => stop(`it ran longer than ${formatDuration(limits.timeoutMs)}`),
      limits.timeoutMs,
    );
    const watchdog = setInterval(() => {
      const rss = residentBytes(child.pid);
      if (rss !== undefined && rss > limits.maxRssBytes)
        stop(`it used more than ${sizeText(limits.maxRssBytes)} of memory (${sizeText(rss)} resident)`);
    }, 50);
    const done = () => {
      clearTimeout(deadline);
      clearInterval(watchdog);
    };
    child.on('error', (error) => {
      done();
      reject(error);
    });
    child.on('close', (code, signal) => {
      done();
      if (limit) return reject(Object.assign(new Error(limit), { limit, stderr }));
      if (code === 0) return resolvePromise(Buffer.concat(out).toString('utf8'));
      reject(
        Object.assign(new Error(`${command} exited with ${code ?? signal}`), {
          stderr,
          code: code ?? signal,
        }),
      );
    });
  });
}

function sizeText(bytes: number): string {
  return bytes < 1024 * 1024 ? `${Math.round(bytes / 1024)} KiB` : `${Math.round(bytes / 1024 / 1024)} MiB`;
}

function residentBytes(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export async function loadManifests(options: {
  kustomize?: string;
  manifests?: string[];
  cwd: string;
  guard?: PathGuard;
}): Promise<SourcedObject[]> {
  const objects: SourcedObject[] = [];
  if (options.kustomize)
    objects.push(...(await renderKustomize(options.kustomize, options.cwd, 'kubectl', options.guard)));
  if (options.manifests?.length) {
    for (const file of expandManifestPaths(options.manifests, options.cwd, 'manifests', options.guard))
      objects.push(...parseManifestText(readFileSync(file, 'utf8'), file, options.cwd));
  }
  if (objects.length === 0)
    throw new InputError(
      options.kustomize ? 'kustomize' : 'manifests',
      'produced no Kubernetes objects',
      'manifests with at least one object',
    );
  const seen = new Map<string, string>();
  for (const { object, source } of objects) {
    const key = `${object.apiVersion.split('/')[0]}/${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`;
    const earlier = seen.get(key);
    if (earlier)
      throw new ManifestError(
        `${source}: ${object.kind}/${object.metadata.name} is defined twice (first in ${earlier})`,
      );
    seen.set(key, source);
  }
  return objects;
}

/** Pod specs inside any workload kind, for image substitution and annotations. */
export function podTemplates(
  obj: KubeObject,
): { spec: Record<string, unknown>; metadata: Record<string, unknown> }[] {
  const spec = obj.spec as Record<string, unknown> | undefined;
  if (!spec) return [];
  switch (obj.kind) {
    case 'Pod':
      return [{ spec, metadata: obj.metadata as Record<string, unknown> }];
    case 'CronJob': {
      const job = (
        spec.jobTemplate as
          | { spec?: { template?: { spec?: Record<string, unknown>; metadata?: Record<string, unknown> } } }
          | undefined
      )?.spec?.template;
      if (!job?.spec) return [];
      job.metadata ??= {};
      return [{ spec: job.spec, metadata: job.metadata }];
    }
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
    case 'Job': {
      const template = spec.template as
        | { spec?: Record<string, unknown>; metadata?: Record<string, unknown> }
        | undefined;
      if (!template?.spec) return [];
      template.metadata ??= {};
      return [{ spec: template.spec, metadata: template.metadata }];
    }
    default:
      return [];
  }
}

interface Container {
  name: string;
  image?: string;
}

function containersOf(podSpec: Record<string, unknown>): Container[] {
  return [
    ...((podSpec.initContainers as Container[] | undefined) ?? []),
    ...((podSpec.containers as Container[] | undefined) ?? []),
  ];
}

/** `registry:5000/team/app:tag@sha256:…` → `registry:5000/team/app`. */
export function imageRepository(ref: string): string {
  const noDigest = ref.split('@')[0]!;
  const lastSlash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > lastSlash ? noDigest.slice(0, colon) : noDigest;
}

/** An image name in the `images` map matches a container image when the repository is it, or ends with /it. */
function imageMatches(containerImage: string, name: string): boolean {
  const repo = imageRepository(containerImage);
  const target = imageRepository(name);
  return repo === target || repo.endsWith(`/${target}`);
}

/**
 * Sets new image references by image name, in containers and initContainers of every workload.
 * Returns which names matched; a name that matched nothing is an input error, raised before any
 * object is applied.
 */
export function substituteImages(
  objects: SourcedObject[],
  images: Map<string, string>,
  inputName = 'images',
): { container: string; object: string; from: string; to: string }[] {
  const changes: { container: string; object: string; from: string; to: string }[] = [];
  const used = new Set<string>();
  for (const { object } of objects) {
    for (const { spec } of podTemplates(object)) {
      for (const c of containersOf(spec)) {
        if (!c.image) continue;
        for (const [name, ref] of images) {
          if (imageMatches(c.image, name)) {
            used.add(name);
            changes.push({
              container: c.name,
              object: `${object.kind}/${object.metadata.name}`,
              from: c.image,
              to: ref,
            });
            c.image = ref;
            break;
          }
        }
      }
    }
  }
  const unused = [...images.keys()].filter((n) => !used.has(n));
  if (unused.length > 0) {
    const present = [
      ...new Set(
        objects.flatMap(({ object }) =>
          podTemplates(object).flatMap(({ spec }) => containersOf(spec).map((c) => c.image ?? '')),
        ),
      ),
    ].filter(Boolean);
    throw new InputError(
      inputName,
      `names ${unused.map((u) => JSON.stringify(u)).join(', ')}, which no container in the manifests uses`,
      `image names present in the manifests: ${present.join(', ') || '(none)'}`,
    );
  }
  return changes;
}

/** The images of the workloads, for outputs and summaries. */
export function workloadImages(obj: KubeObject): string[] {
  return podTemplates(obj).flatMap(({ spec }) =>
    ((spec.containers as Container[] | undefined) ?? []).map((c) => c.image ?? ''),
  );
}

export const CONFIG_CHECKSUM_ANNOTATION = 'pipeline.dev/config-checksum';
export const SECRET_CHECKSUM_ANNOTATION = 'pipeline.dev/secret-checksum';

/** The rendered ConfigMaps or Secrets by `Kind/name`, as the text their checksum covers. */
function configContents(objects: SourcedObject[], kind: 'ConfigMap' | 'Secret'): Map<string, string> {
  const data = new Map<string, string>();
  for (const { object } of objects) {
    if (object.kind !== kind) continue;
    const content = JSON.stringify({
      data: object.data ?? null,
      binaryData: object.binaryData ?? null,
      stringData: object.stringData ?? null,
    });
    data.set(`${object.kind}/${object.metadata.name}`, content);
  }
  return data;
}

function stampChecksum(
  objects: SourcedObject[],
  kind: 'ConfigMap' | 'Secret',
  annotation: string,
  digest: () => Hash | Hmac,
): void {
  const data = configContents(objects, kind);
  if (data.size === 0) return;
  for (const { object } of objects) {
    for (const { spec, metadata } of podTemplates(object)) {
      const used = configReferences(spec);
      const refs = [...data.keys()].filter((key) => used.has(key)).sort();
      if (refs.length === 0) continue;
      const hash = digest();
      for (const key of refs) hash.update(`${key}\n${data.get(key)}\n`);
      const annotations = (metadata.annotations as Record<string, string> | undefined) ?? {};
      metadata.annotations = annotations;
      annotations[annotation] = hash.digest('hex').slice(0, 16);
    }
  }
}

/**
 * Stamps each workload's pod template with a checksum of the rendered ConfigMaps it uses (by
 * volume, envFrom or env valueFrom), so a config-only change rolls the pods and reaches the code.
 * Plain sha256 is enough here: a ConfigMap's data is no secret, and the plan shows it anyway.
 */
export function stampConfigChecksums(objects: SourcedObject[]): void {
  stampChecksum(objects, 'ConfigMap', CONFIG_CHECKSUM_ANNOTATION, () => createHash('sha256'));
}

/**
 * The same for the rendered Secrets a template uses, as an HMAC under the namespace's checksum
 * key: the annotation is readable by anyone who can read the Deployment (a plan's Role that may
 * not read Secrets, a summary), and an unkeyed hash of a low-entropy value can be confirmed offline.
 */
export function stampSecretChecksums(objects: SourcedObject[], key: Buffer): void {
  stampChecksum(objects, 'Secret', SECRET_CHECKSUM_ANNOTATION, () => createHmac('sha256', key));
}

/** Whether some pod template uses a Secret the manifests render: only then is a checksum key needed. */
export function templatesUseRenderedSecrets(objects: SourcedObject[]): boolean {
  const secrets = configContents(objects, 'Secret');
  return objects.some(({ object }) =>
    podTemplates(object).some(({ spec }) => [...configReferences(spec)].some((r) => secrets.has(r))),
  );
}

/** The ConfigMaps and Secrets a pod spec uses (volumes, projected sources, envFrom, env valueFrom), as `Kind/name`. */
export function configReferences(spec: Record<string, unknown>): Set<string> {
  const found = new Set<string>();
  const visit = (node: unknown) => {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    const o = node as Record<string, unknown>;
    for (const k of ['configMap', 'configMapRef', 'configMapKeyRef']) {
      const name = (o[k] as { name?: unknown } | undefined)?.name;
      if (typeof name === 'string') found.add(`ConfigMap/${name}`);
    }
    const secretName = (o.secret as { secretName?: unknown } | undefined)?.secretName;
    if (typeof secretName === 'string') found.add(`Secret/${secretName}`);
    for (const k of ['secretRef', 'secretKeyRef']) {
      const name = (o[k] as { name?: unknown } | undefined)?.name;
      if (typeof name === 'string') found.add(`Secret/${name}`);
    }
    for (const v of Object.values(o)) visit(v);
  };
  visit(spec);
  return found;
}
