import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { runRehearseCommand } from '../../tooling/cli/rehearse.ts';
import { REPO_ROOT } from '../../tooling/runners/action-runner.ts';
import { describeWithPostgres, SCENARIO_TIMEOUT, TIME_SCALE } from '../support/rehearsal.ts';

/**
 * `pipeline rehearse --repo <dir> --json <file>`: a team's own repository, laid out like
 * examples/shop but changed the way a user would change it (another app, another strategy, other
 * overlay values, a migration of its own), played through the real workflows; the final state is
 * read back from the JSON file, as a script would.
 */

const out = mkdtempSync(join(tmpdir(), 'rehearse-repo-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runRehearseCommand(args, {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    env: {},
    cwd: out,
  });
  return { code, stdout, stderr };
}

function replaceIn(file: string, from: string | RegExp, to: string): void {
  const text = readFileSync(file, 'utf8');
  expect(text).toMatch(from);
  writeFileSync(file, text.replace(from, to));
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

/** examples/shop as the books team made it their own: blue-green, production at 4 replicas with error logs. */
function booksRepository(name: string): string {
  const dir = join(out, name);
  cpSync(join(REPO_ROOT, 'examples', 'shop'), dir, { recursive: true });
  for (const file of [...walk(join(dir, 'k8s')), ...walk(join(dir, '.github'))])
    writeFileSync(file, readFileSync(file, 'utf8').replaceAll('shop', 'books'));
  const caller = join(dir, '.github', 'workflows', 'release.yml');
  replaceIn(caller, 'strategy: canary', 'strategy: blue-green');
  replaceIn(caller, 'service: books-canary:80', 'service: books-preview:80');
  // Blue-green has no Deployment named books (the colours are books-blue and books-green).
  replaceIn(
    caller,
    /\n {8}- name: pods\n {10}type: kubernetes\n {10}workload: deployment\/books\n( {4}secrets: inherit)/,
    '\n$1',
  );
  const production = join(dir, 'k8s', 'production', 'kustomization.yaml');
  replaceIn(production, '- LOG_LEVEL=warn', '- LOG_LEVEL=error');
  replaceIn(production, 'count: 10', 'count: 4');
  writeFileSync(
    join(dir, 'migrations', '004_create_reviews.sql'),
    '-- migrate:up\nCREATE TABLE reviews (id bigint PRIMARY KEY, body text NOT NULL);\n\n-- migrate:down\nDROP TABLE reviews;\n',
  );
  return dir;
}

interface FinalState {
  ok: boolean;
  ended: string;
  app: string;
  images: Record<'feature' | 'main' | 'previous', string>;
  environments: Record<
    string,
    {
      namespace: string;
      image: string | null;
      deployment: string | null;
      deployments: Record<
        string,
        { image: string | null; replicas: number | null; config: Record<string, string> }
      >;
      migrations: string[];
    }
  >;
  slack: { ts: string; threadTs?: string; text: string; blocks: { text?: { text?: string } }[] }[];
  deployments: { environment: string; payload: { app?: string }; statuses: { state: string }[] }[];
  runs: { label: string; failed: { job: string; step: string; errors: string[]; error?: string }[] }[];
}

const readState = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as FinalState;

describe('pipeline rehearse --repo: a directory not laid out like examples/shop', () => {
  test('is refused before anything starts, naming every missing piece', async () => {
    const dir = join(out, 'half-done');
    cpSync(join(REPO_ROOT, 'examples', 'shop'), dir, { recursive: true });
    rmSync(join(dir, 'k8s', 'staging'), { recursive: true });
    rmSync(join(dir, '.github', 'environments.yml'));
    replaceIn(join(dir, 'k8s', 'dev', 'kustomization.yaml'), 'namespace: shop-dev\n', '');
    const r = await cli(['--repo', dir, '--approve']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`error: --repo: ${dir} is not laid out like examples/shop:`);
    expect(r.stderr).toContain(
      'k8s/staging/kustomization.yaml is missing (one kustomize overlay per environment',
    );
    expect(r.stderr).toContain('.github/environments.yml is missing');
    expect(r.stderr).toContain('k8s/dev/kustomization.yaml names no namespace');
  });

  test('without a workflow calling pipeline.yml, or a Deployment named after the app, says so', async () => {
    const dir = join(out, 'no-caller');
    cpSync(join(REPO_ROOT, 'examples', 'shop'), dir, { recursive: true });
    rmSync(join(dir, '.github', 'workflows', 'release.yml'));
    rmSync(join(dir, '.github', 'workflows', 'rollback.yml'));
    expect((await cli(['--repo', dir])).stderr).toContain(
      'no workflow in .github/workflows calls pipeline.yml',
    );
    const renamed = booksRepository('renamed-app');
    replaceIn(join(renamed, '.github', 'workflows', 'release.yml'), 'app: books', 'app: library');
    const r = await cli(['--repo', renamed]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('k8s/production renders no Deployment named library');
    expect(r.stderr).toContain('k8s/production renders no Service named library');
    expect((await cli(['--repo', join(out, 'nowhere')])).stderr).toContain('it is not a directory');
  });
});

describeWithPostgres('pipeline rehearse --repo <dir> --json <file>', () => {
  test(
    "plays the team's own repository (app, strategy, overlay, migrations) and writes the final state",
    async () => {
      const repo = booksRepository('books');
      const json = join(out, 'books.json');
      const r = await cli([
        '--repo',
        repo,
        '--scenario',
        'healthy',
        '--approve',
        '--time-scale',
        String(TIME_SCALE),
        '--report',
        join(out, 'books.md'),
        '--json',
        json,
      ]);
      expect(r.stderr).toBe('');
      expect(r.stdout).toContain("✅ Scenario 'healthy' ended as expected.");
      expect(r.code).toBe(0);
      const state = readState(json);
      expect(state).toMatchObject({ ok: true, ended: 'succeeded', app: 'books' });
      expect(state.images.main).toMatch(/^ghcr\.io\/acme\/books@sha256:[0-9a-f]{64}$/);
      // Production: the strategy the caller names, the overlay's values, the team's own migration.
      const production = state.environments.production!;
      expect(production.namespace).toBe('books-production');
      expect(production.deployment).toBe('books-green');
      expect(production.image).toBe(state.images.main);
      expect(production.deployments['books-green']).toMatchObject({ image: state.images.main, replicas: 4 });
      expect(production.deployments['books-green']!.config).toMatchObject({
        LOG_LEVEL: 'error',
        DATABASE_HOST: 'books-production-db.internal.example.com',
      });
      // The previous release's colour, scaled down once the soak passed.
      expect(production.deployments['books-blue']).toMatchObject({
        image: state.images.previous,
        replicas: 0,
      });
      expect(production.migrations).toEqual(['1', '2', '3', '4']);
      // Staging and dev got the new release with their own overlays (rolling).
      expect(state.environments.staging!.deployments.books).toMatchObject({
        image: state.images.main,
        replicas: 3,
      });
      expect(state.environments.dev!.deployments.books).toMatchObject({
        image: state.images.feature,
        replicas: 1,
      });
      // Slack: the living message of the release names the app and its ending.
      const living = state.slack.filter((m) => !m.threadTs).at(-1)!;
      expect(living.blocks[0]!.text!.text).toBe('✅ books deployed to production');
      // GitHub: the app's deployments, production's last one final.
      const ours = state.deployments.filter((d) => d.payload.app === 'books');
      expect(ours.at(-1)).toMatchObject({ environment: 'production', statuses: [{ state: 'success' }] });
    },
    SCENARIO_TIMEOUT,
  );

  test(
    "plays the team's workflow as written: blue-green with checks still aimed at the canary fails its input check",
    async () => {
      // The shop's caller (checks at shop-canary and deployment/shop) switched to blue-green by the
      // team, who forgot the checks: the rehearsal must not aim them at the colours for it.
      const repo = join(out, 'forgot-checks');
      cpSync(join(REPO_ROOT, 'examples', 'shop'), repo, { recursive: true });
      replaceIn(
        join(repo, '.github', 'workflows', 'release.yml'),
        'strategy: canary',
        'strategy: blue-green',
      );
      const json = join(out, 'forgot-checks.json');
      const r = await cli([
        '--repo',
        repo,
        '--scenario',
        'healthy',
        '--approve',
        '--time-scale',
        String(TIME_SCALE),
        '--report',
        join(out, 'forgot-checks.md'),
        '--json',
        json,
      ]);
      expect(r.stdout).not.toContain('ended as expected');
      expect(r.code).toBe(1);
      const state = readState(json);
      expect(state.ok).toBe(false);
      for (const e of ['dev', 'staging', 'production'])
        expect(state.environments[e]).toMatchObject({ image: null, deployments: {}, migrations: [] });
      // The input check names both inputs and the accepted form, in the terminal too.
      expect(r.stdout).toContain(
        'production-checks names deployment/shop, which blue-green does not run (its Deployments are shop-blue and shop-green)',
      );
      expect(r.stdout).toContain(
        'production-canary-checks targets shop-canary, which blue-green does not have; accepted: checks aimed at the idle colour, service: shop-preview:<port>',
      );
      // The JSON says why each run failed, not only "exit code 1".
      for (const run of state.runs) {
        expect(run.failed).toHaveLength(1);
        expect(run.failed[0]).toMatchObject({ job: 'pipeline/plan', error: 'exit code 1' });
        expect(run.failed[0]!.errors).toEqual([
          expect.stringContaining('production-checks names deployment/shop'),
          expect.stringContaining('production-canary-checks targets shop-canary'),
        ]);
      }
      // Refused before any environment, on main (the previous release's run) as on the feature
      // branches: Slack names no environment.
      const living = state.slack.filter((m) => !m.threadTs);
      expect(living).toHaveLength(3);
      for (const m of living) expect(m.blocks[0]!.text!.text).toBe('❌ shop failed to deploy');

      // --strategy with --repo changes the strategy: line only, and says so.
      const canary = join(out, 'forgot-checks-canary');
      cpSync(join(REPO_ROOT, 'examples', 'shop'), canary, { recursive: true });
      const again = await cli([
        '--repo',
        canary,
        '--strategy',
        'blue-green',
        '--scenario',
        'first-release',
        '--approve',
        '--time-scale',
        String(TIME_SCALE),
        '--report',
        join(out, 'forgot-checks-canary.md'),
      ]);
      expect(again.stdout).toContain(
        '--strategy blue-green: only the strategy: line of .github/workflows/release.yml was changed (it names canary); its checks are played as written',
      );
      expect(again.stdout).toContain('production-checks names deployment/shop');
      expect(again.code).toBe(1);
    },
    SCENARIO_TIMEOUT,
  );

  test(
    'overlays in another namespace than <app>-<environment> fail before the migrations; the namespace inputs deploy them',
    async () => {
      const repo = join(out, 'sandbox');
      cpSync(join(REPO_ROOT, 'examples', 'shop'), repo, { recursive: true });
      replaceIn(
        join(repo, 'k8s', 'dev', 'kustomization.yaml'),
        'namespace: shop-dev',
        'namespace: shop-sandbox',
      );
      const args = (name: string) => [
        '--repo',
        repo,
        '--scenario',
        'first-release',
        '--approve',
        '--time-scale',
        String(TIME_SCALE),
        '--report',
        join(out, `${name}.md`),
        '--json',
        join(out, `${name}.json`),
      ];
      const refused = await cli(args('sandbox-refused'));
      expect(refused.code).toBe(1);
      expect(refused.stdout).toContain(
        'is in namespace shop-sandbox, but this deploy targets shop-dev; remove metadata.namespace or deploy to shop-sandbox',
      );
      const before = readState(join(out, 'sandbox-refused.json'));
      // Refused by the overlay check, before the migrations: dev's database and namespace untouched.
      expect(before.environments.dev).toMatchObject({
        namespace: 'shop-sandbox',
        image: null,
        migrations: [],
      });
      expect(before.runs[0]!.failed.map((f) => [f.job, f.step])).toEqual([
        ['pipeline/dev/deploy', 'overlay check (read-only)'],
      ]);

      replaceIn(
        join(repo, '.github', 'workflows', 'release.yml'),
        '      app: shop\n',
        '      app: shop\n      dev-namespace: shop-sandbox\n',
      );
      const played = await cli(args('sandbox'));
      expect(played.stdout).toContain("✅ Scenario 'first-release' ended as expected.");
      expect(played.code).toBe(0);
      const after = readState(join(out, 'sandbox.json'));
      expect(after.environments.dev).toMatchObject({
        namespace: 'shop-sandbox',
        image: after.images.feature,
        migrations: ['1', '2', '3'],
      });
      expect(after.environments.production!.image).toBe(after.images.main);
    },
    SCENARIO_TIMEOUT,
  );

  test(
    '--reject production is an expected ending: exit 0, and the JSON says rejected with production empty',
    async () => {
      const repo = booksRepository('books-rejected');
      const json = join(out, 'rejected.json');
      const r = await cli([
        '--repo',
        repo,
        '--scenario',
        'first-release',
        '--reject',
        'production',
        '--time-scale',
        String(TIME_SCALE),
        '--report',
        join(out, 'rejected.md'),
        '--json',
        json,
      ]);
      expect(r.stdout).toContain(
        "✅ Scenario 'first-release' ended as rejected at the production approval, as asked (--reject production).",
      );
      expect(r.code).toBe(0);
      const state = readState(json);
      expect(state).toMatchObject({ ok: false, ended: 'rejected' });
      expect(state.environments.production).toMatchObject({ image: null, deployments: {}, migrations: [] });
      expect(state.environments.staging!.image).toBe(state.images.main);
      expect(JSON.stringify(state.slack.filter((m) => !m.threadTs).at(-1)!.blocks)).toContain(
        'Production was not approved',
      );
    },
    SCENARIO_TIMEOUT,
  );
});
