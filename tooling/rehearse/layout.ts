import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

export const ENVIRONMENTS = ['dev', 'staging', 'production'] as const;
export type EnvironmentName = (typeof ENVIRONMENTS)[number];

/**
 * What the rehearsal needs to know of a repository laid out like examples/shop, read from its own
 * files: the caller workflow and what it hands pipeline.yml, the overlays, the migrations.
 */
export interface RepoLayout {
  dir: string;
  /** The workflow (relative to dir) whose job calls pipeline.yml. */
  caller: string;
  app: string;
  /** The strategy the caller names (pipeline.yml's default when it names none). */
  strategy: string;
  kustomizeRoot: string;
  /** Namespace of each environment's overlay. */
  namespaces: Record<EnvironmentName, string>;
  /** `owner/name`: the build job derives `ghcr.io/<owner>/<name>@sha256:…` when Docker is skipped. */
  repository: string;
  imageRepository: string;
  migrationsDir: string | undefined;
  /** Migration files, oldest first, with their versions as schema_migrations stores them. */
  migrations: { file: string; version: string }[];
  slackChannel: string | undefined;
}

export class RepoLayoutError extends Error {
  readonly dir: string;
  readonly problems: string[];
  constructor(dir: string, problems: string[]) {
    super(`${dir} is not laid out like examples/shop:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'RepoLayoutError';
    this.dir = dir;
    this.problems = problems;
  }
}

interface CallerJob {
  uses?: string;
  with?: Record<string, unknown>;
}

const MIGRATION = /^(\d+)_[^/]+\.sql$/;

function render(dir: string): Record<string, unknown>[] {
  const text = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: 'pipe' });
  return parseAllDocuments(text)
    .map((d) => d.toJSON() as Record<string, unknown> | null)
    .filter((o): o is Record<string, unknown> => o !== null);
}

/** Reads `dir` as the rehearsal plays it; every missing piece is named at once. */
export function readRepoLayout(dir: string): RepoLayout {
  const problems: string[] = [];
  const fail = (): never => {
    throw new RepoLayoutError(dir, problems);
  };
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    problems.push('it is not a directory');
    fail();
  }
  const workflows = join(dir, '.github', 'workflows');
  let caller: { file: string; job: CallerJob } | undefined;
  if (!existsSync(workflows)) problems.push('.github/workflows is missing (the caller workflow lives there)');
  else
    for (const file of readdirSync(workflows)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort()) {
      let doc: { jobs?: Record<string, CallerJob> } | null;
      try {
        doc = parseYaml(readFileSync(join(workflows, file), 'utf8'));
      } catch (error) {
        problems.push(
          `.github/workflows/${file} is not valid YAML: ${(error as Error).message.split('\n')[0]}`,
        );
        continue;
      }
      for (const job of Object.values(doc?.jobs ?? {}))
        if (!caller && /\/\.github\/workflows\/pipeline\.yml@/.test(job?.uses ?? ''))
          caller = { file: `.github/workflows/${file}`, job };
    }
  if (existsSync(workflows) && !caller)
    problems.push(
      'no workflow in .github/workflows calls pipeline.yml (a job with uses: <owner>/pipeline/.github/workflows/pipeline.yml@<ref>, as examples/shop/.github/workflows/release.yml has)',
    );
  const inputs = caller?.job.with ?? {};
  const text = (name: string) => (typeof inputs[name] === 'string' ? (inputs[name] as string) : undefined);
  const app = text('app');
  if (caller && !app)
    problems.push(`${caller.file}: the pipeline job has no app input (the Deployment's name)`);
  if (!existsSync(join(dir, '.github', 'environments.yml')))
    problems.push(
      ".github/environments.yml is missing (the environments' reviewers and branch policies, as in examples/shop)",
    );
  const kustomizeRoot = text('kustomize-root') ?? 'k8s';
  const namespaces: Partial<Record<EnvironmentName, string>> = {};
  let imageRepository: string | undefined;
  for (const env of ENVIRONMENTS) {
    const overlay = join(dir, kustomizeRoot, env);
    const file = join(overlay, 'kustomization.yaml');
    if (!existsSync(file)) {
      problems.push(
        `${kustomizeRoot}/${env}/kustomization.yaml is missing (one kustomize overlay per environment: ${ENVIRONMENTS.map((e) => `${kustomizeRoot}/${e}`).join(', ')})`,
      );
      continue;
    }
    const namespace = (parseYaml(readFileSync(file, 'utf8')) as { namespace?: unknown } | null)?.namespace;
    if (typeof namespace !== 'string' || !namespace)
      problems.push(
        `${kustomizeRoot}/${env}/kustomization.yaml names no namespace (the rehearsal creates each environment's namespace from it)`,
      );
    else namespaces[env] = namespace;
    if (!app) continue;
    let objects: Record<string, unknown>[];
    try {
      objects = render(overlay);
    } catch (error) {
      const stderr = String((error as { stderr?: unknown }).stderr ?? (error as Error).message);
      problems.push(
        `${kustomizeRoot}/${env} does not render with kubectl kustomize: ${stderr.trim().split('\n')[0]}`,
      );
      continue;
    }
    const named = (kind: string) =>
      objects.find((o) => o.kind === kind && (o.metadata as { name?: string })?.name === app);
    const deployment = named('Deployment') as
      | { spec?: { template?: { spec?: { containers?: { image?: string }[] } } } }
      | undefined;
    if (!deployment)
      problems.push(
        `${kustomizeRoot}/${env} renders no Deployment named ${app} (the pipeline deploys the Deployment named after the app input; blue-green runs it as ${app}-blue and ${app}-green)`,
      );
    if (!named('Service'))
      problems.push(
        `${kustomizeRoot}/${env} renders no Service named ${app} (the checks reach the app through it; blue-green switches its selector)`,
      );
    const image = deployment?.spec?.template?.spec?.containers?.[0]?.image;
    if (env === 'production' && image) imageRepository = image.replace(/@.*$/, '').replace(/:[^/]*$/, '');
  }
  let repository: string | undefined;
  if (imageRepository) {
    const m = /^ghcr\.io\/([^/]+\/[^/]+)$/.exec(imageRepository);
    if (m) repository = m[1];
    else
      problems.push(
        `the Deployment ${app}'s image is ${imageRepository}; the rehearsal builds no image (its build job derives ghcr.io/<owner>/<repository>@sha256:<commit> when Docker is skipped), so it plays repositories whose image is ghcr.io/<owner>/<name>`,
      );
  }
  const migrationsDir = text('migrations-dir') || undefined;
  const migrations: RepoLayout['migrations'] = [];
  if (migrationsDir) {
    const path = join(dir, migrationsDir);
    if (!existsSync(path))
      problems.push(`${migrationsDir}/ is missing (the caller's migrations-dir; <version>_<name>.sql files)`);
    else {
      for (const file of readdirSync(path).sort()) {
        const m = MIGRATION.exec(file);
        if (m) migrations.push({ file, version: String(Number(m[1])) });
      }
      migrations.sort((a, b) => Number(a.version) - Number(b.version));
      if (migrations.length === 0)
        problems.push(
          `${migrationsDir}/ holds no migration (<version>_<name>.sql, such as 001_create_products.sql)`,
        );
    }
  }
  if (problems.length > 0) fail();
  return {
    dir,
    caller: relative(dir, join(dir, caller!.file)),
    app: app!,
    strategy: text('strategy') ?? 'canary',
    kustomizeRoot,
    namespaces: namespaces as Record<EnvironmentName, string>,
    repository: repository!,
    imageRepository: imageRepository!,
    migrationsDir,
    migrations,
    slackChannel: text('slack-channel') || undefined,
  };
}
