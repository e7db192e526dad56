import { spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import { branchPatternProblem, parseEnvironmentsConfig } from '../../packages/github/environments.ts';
import { runEnvironmentsCommand } from '../../tooling/cli/environments.ts';
import { LocalGitHub, type TeamRecord, type UserRecord } from '../../tooling/local-services/local-github.ts';
import { parseWorkflowCommands, REPO_ROOT } from '../../tooling/runners/action-runner.ts';

const TOKEN = 'ghp_environmentsSecretToken0123456789abcd';
const OWNER = 'acme';
const REPO = 'shop';

let gh: LocalGitHub;
let dir: string;
let alice: UserRecord;
let bob: UserRecord;
let sre: TeamRecord;
/** Every line any run printed, to prove the token never appears in any of them. */
const printed: string[] = [];

const FILE = `
environments:
  dev:
    branches: ['feature/*']
    variables:
      LOG_LEVEL: debug
      FEATURE_NEW_CHECKOUT: true
  staging:
    branches: [main]
    variables:
      LOG_LEVEL: info
  production:
    reviewers:
      users: [alice]
      teams: [acme/sre]
    prevent-self-review: true
    wait-timer: 30m
    branches: [main]
    variables:
      LOG_LEVEL: warn
      REPLICAS: 10
`;

async function writeConfig(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

async function run(args: string[], env: Record<string, string | undefined> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runEnvironmentsCommand(args, {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    env: {
      GITHUB_TOKEN: TOKEN,
      GITHUB_API_URL: gh.url,
      GITHUB_REPOSITORY: `${OWNER}/${REPO}`,
      ...env,
    },
    cwd: dir,
  });
  printed.push(stdout, stderr);
  return { code, stdout, stderr };
}

function writes() {
  return gh.requests.filter((r) => r.method !== 'GET');
}

function policies(name: string) {
  return gh.environment(OWNER, REPO, name)?.branch_policies.map((p) => `${p.type}:${p.name}`);
}

function variables(name: string) {
  return Object.fromEntries(gh.environment(OWNER, REPO, name)?.variables.map((v) => [v.name, v.value]) ?? []);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pipeline-environments-'));
});

beforeEach(async () => {
  await gh?.close();
  gh = await LocalGitHub.start({ tokens: [TOKEN] });
  alice = gh.seedUser('alice');
  bob = gh.seedUser('bob');
  sre = gh.seedTeam('acme', 'sre', 'SRE');
});

afterAll(async () => {
  await gh?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('pipeline environments', () => {
  test('plan shows every change per environment and changes nothing', async () => {
    const config = await writeConfig('plan.yml', FILE);
    const result = await run(['plan', '--config', config]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Environments of acme/shop:');
    expect(result.stdout).toContain('+ dev (create)');
    expect(result.stdout).toContain('    + branch rule feature/* (branch)');
    expect(result.stdout).toContain('    + variable FEATURE_NEW_CHECKOUT = "true"');
    expect(result.stdout).toContain('+ production (create)');
    expect(result.stdout).toContain('    + wait timer = 30 min');
    expect(result.stdout).toContain('    + reviewer alice (user)');
    expect(result.stdout).toContain('    + reviewer acme/sre (team)');
    expect(result.stdout).toContain('    ~ prevent self-review: false -> true');
    expect(result.stdout).toContain('Plan: 3 to create, 0 to update, 0 unchanged');
    expect(result.stdout).toContain('This was a plan: nothing was changed.');
    expect(writes()).toEqual([]);
    expect(gh.environments).toEqual([]);
    // Reviewers were resolved to IDs through the documented lookups.
    expect(gh.requests.map((r) => `${r.method} ${r.path}`)).toEqual(
      expect.arrayContaining(['GET /users/alice', 'GET /orgs/acme/teams/sre']),
    );
  });

  test('apply without --apply is a plan too', async () => {
    const config = await writeConfig('dry.yml', FILE);
    const result = await run(['apply', '--config', config]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('run again with --apply');
    expect(writes()).toEqual([]);
  });

  test('apply --apply creates the environments, and a second apply is a no-op', async () => {
    const config = await writeConfig('create.yml', FILE);
    const first = await run(['apply', '--config', config, '--apply']);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('production: environment created');

    const production = gh.environment(OWNER, REPO, 'production')!;
    expect(production).toMatchObject({
      wait_timer: 30,
      prevent_self_review: true,
      reviewers: [
        { type: 'User', id: alice.id },
        { type: 'Team', id: sre.id },
      ],
      deployment_branch_policy: { protected_branches: false, custom_branch_policies: true },
    });
    expect(policies('production')).toEqual(['branch:main']);
    expect(policies('staging')).toEqual(['branch:main']);
    expect(policies('dev')).toEqual(['branch:feature/*']);
    expect(variables('dev')).toEqual({ LOG_LEVEL: 'debug', FEATURE_NEW_CHECKOUT: 'true' });
    expect(variables('production')).toEqual({ LOG_LEVEL: 'warn', REPLICAS: '10' });
    expect(gh.environment(OWNER, REPO, 'dev')).toMatchObject({ reviewers: [], wait_timer: 0 });

    // The PUT carries the whole environment in GitHub's documented shape.
    const put = gh.requests.find((r) => r.method === 'PUT' && r.path.endsWith('/environments/production'));
    expect(put?.body).toEqual({
      wait_timer: 30,
      prevent_self_review: true,
      reviewers: [
        { type: 'User', id: alice.id },
        { type: 'Team', id: sre.id },
      ],
      deployment_branch_policy: { protected_branches: false, custom_branch_policies: true },
      can_admins_bypass: true,
    });
    expect(gh.requests.every((r) => r.authorization === `token ${TOKEN}`)).toBe(true);

    const before = writes().length;
    const second = await run(['apply', '--config', config, '--apply']);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('Plan: 0 to create, 0 to update, 3 unchanged (0 changes).');
    expect(second.stdout).toContain('Nothing to change.');
    expect(writes().length).toBe(before);
  });

  test('changed reviewers, branch rules and variables are updated, removed ones deleted', async () => {
    await run(['apply', '--config', await writeConfig('v1.yml', FILE), '--apply']);
    const v2 = FILE.replace('users: [alice]', 'users: [bob]')
      .replace('wait-timer: 30m', 'wait-timer: 60')
      .replace("branches: ['feature/*']", "branches: ['feature/*', 'fix/*']")
      .replace(
        '    branches: [main]\n    variables:\n      LOG_LEVEL: info',
        '    branches: [release/*]\n    tags: [v*]\n    variables:\n      LOG_LEVEL: notice',
      )
      .replace('      REPLICAS: 10\n', '')
      .replace('      FEATURE_NEW_CHECKOUT: true\n', '');
    const config = await writeConfig('v2.yml', v2);
    const start = gh.requests.length;

    const plan = await run(['plan', '--config', config]);
    expect(plan.stdout).toContain('~ production (update)');
    expect(plan.stdout).toContain('    + reviewer bob (user)');
    expect(plan.stdout).toContain('    - reviewer alice (user)');
    expect(plan.stdout).toContain('    ~ wait timer: 30 min -> 60 min');
    expect(plan.stdout).toContain('    - variable REPLICAS');
    expect(plan.stdout).toContain('~ staging (update)');
    expect(plan.stdout).toContain('    - branch rule main (branch)');
    expect(plan.stdout).toContain('    + branch rule release/* (branch)');
    expect(plan.stdout).toContain('    + branch rule v* (tag)');
    expect(plan.stdout).toContain('    ~ variable LOG_LEVEL: "info" -> "notice"');
    expect(plan.stdout).toContain('    - variable FEATURE_NEW_CHECKOUT');
    expect(gh.requests.slice(start).every((r) => r.method === 'GET')).toBe(true);

    const applied = await run(['apply', '--config', config, '--apply']);
    expect(applied.code).toBe(0);
    const mutations = gh.requests
      .slice(start)
      .filter((r) => r.method !== 'GET')
      .map((r) => `${r.method} ${r.path.replace(/\/\d+$/, '/<id>')}`);
    expect(mutations.sort()).toEqual(
      [
        'POST /repos/acme/shop/environments/dev/deployment-branch-policies',
        'DELETE /repos/acme/shop/environments/dev/variables/FEATURE_NEW_CHECKOUT',
        'DELETE /repos/acme/shop/environments/staging/deployment-branch-policies/<id>',
        'POST /repos/acme/shop/environments/staging/deployment-branch-policies',
        'POST /repos/acme/shop/environments/staging/deployment-branch-policies',
        'PATCH /repos/acme/shop/environments/staging/variables/LOG_LEVEL',
        'PUT /repos/acme/shop/environments/production',
        'DELETE /repos/acme/shop/environments/production/variables/REPLICAS',
      ].sort(),
    );
    expect(gh.environment(OWNER, REPO, 'production')).toMatchObject({
      wait_timer: 60,
      reviewers: [
        { type: 'User', id: bob.id },
        { type: 'Team', id: sre.id },
      ],
    });
    expect(policies('dev')).toEqual(['branch:feature/*', 'branch:fix/*']);
    expect(policies('staging')).toEqual(['branch:release/*', 'tag:v*']);
    expect(variables('staging')).toEqual({ LOG_LEVEL: 'notice' });
    expect(variables('production')).toEqual({ LOG_LEVEL: 'warn' });

    const again = await run(['apply', '--config', config, '--apply']);
    expect(again.stdout).toContain('Nothing to change.');
  });

  test('leaving custom branch rules and reviewers puts the environment back to open', async () => {
    await run(['apply', '--config', await writeConfig('strict.yml', FILE), '--apply']);
    const open = await writeConfig(
      'open.yml',
      'environments:\n  production:\n    variables:\n      LOG_LEVEL: warn\n',
    );
    const plan = await run(['plan', '--config', open]);
    expect(plan.stdout).toContain(
      '    ~ policy deployment branches: selected branches and tags -> all branches',
    );
    expect(plan.stdout).toContain('    - branch rule main (branch)');
    expect(plan.stdout).toContain('    - wait timer');
    expect(plan.stdout).toContain('    - variable REPLICAS');
    // Environments the file does not name are reported and left alone.
    expect(plan.stdout).toContain('  dev (not in the file: left as it is)');

    await run(['apply', '--config', open, '--apply']);
    expect(gh.environment(OWNER, REPO, 'production')).toMatchObject({
      wait_timer: 0,
      reviewers: [],
      prevent_self_review: false,
      deployment_branch_policy: null,
      branch_policies: [],
    });
    expect(policies('dev')).toEqual(['branch:feature/*']);
  });

  test('variables the file does not mention are left alone, and long lists are read page by page', async () => {
    const many = Array.from({ length: 35 }, (_, i) => ({
      name: `VAR_${String(i).padStart(2, '0')}`,
      value: String(i),
      created_at: '2026-01-01T00:00:00Z',
      updated_at: '2026-01-01T00:00:00Z',
    }));
    gh.seedEnvironment({ owner: OWNER, repo: REPO, name: 'qa', variables: many });
    gh.seedEnvironment({ owner: OWNER, repo: REPO, name: 'preview', variables: [...many] });
    const lines = many
      .slice(0, 34)
      .map((v) => `      ${v.name}: "${v.value}"`)
      .join('\n');
    const config = await writeConfig(
      'many.yml',
      `environments:\n  qa:\n    variables:\n${lines}\n  preview: {}\n`,
    );
    const result = await run(['apply', '--config', config, '--apply']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('    - variable VAR_34');
    expect(writes().map((r) => `${r.method} ${r.path}`)).toEqual([
      'DELETE /repos/acme/shop/environments/qa/variables/VAR_34',
    ]);
    expect(gh.environment(OWNER, REPO, 'preview')?.variables).toHaveLength(35);
  });

  test('a bad file fails before any request, naming each environment and field', async () => {
    const bad = `
environments:
  staging:
    branches: ['main', 'release/..x', 'feature/ x']
    wait-timer: 50000
    reviewer: [alice]
  production:
    reviewers:
      users: [a, b, c, d, e]
      teams: [acme/sre, acme/dba]
    prevent-self-review: yes
    protected-branches: true
    branches: [main]
    variables:
      GITHUB_SHA: x
      1BAD: y
      NESTED: { a: 1 }
  dev:
    wait-timer: 5s
    prevent-self-review: true
secrets: {}
`;
    const result = await run(['apply', '--apply', '--config', await writeConfig('bad.yml', bad)]);
    expect(result.code).toBe(1);
    for (const line of [
      'secrets: unknown key; accepted: environments',
      'environments.staging.reviewer: unknown key; accepted: wait-timer, reviewers, prevent-self-review',
      'environments.staging.wait-timer: 50000 minutes is out of range; accepted: a whole number from 0 to 43200 minutes (30 days)',
      'environments.staging.branches[1]: "release/..x" contains \'..\'',
      'environments.staging.branches[2]: "feature/ x" contains white space',
      'environments.production.reviewers: has 7 reviewers; GitHub allows at most 6 (users and teams together)',
      'environments.production.prevent-self-review: must be true or false, found "yes"',
      'environments.production.protected-branches: cannot be combined with branches or tags',
      'environments.production.variables.GITHUB_SHA: starts with GITHUB_, which GitHub reserves',
      'environments.production.variables.1BAD: is not a valid variable name',
      'environments.production.variables.NESTED: must be a string, number or boolean, found a mapping',
      'environments.dev.wait-timer: "5s" is not a whole number of minutes',
      'environments.dev.prevent-self-review: is true but the environment has no reviewers',
    ]) {
      expect(result.stderr).toContain(line);
    }
    expect(result.stderr).toMatch(/^error: .*bad\.yml is not a valid environments file \(\d+ problems\):\n/);
    expect(gh.requests).toEqual([]);
  });

  test('an unknown reviewer fails naming the field, and nothing changes', async () => {
    const config = await writeConfig(
      'ghost.yml',
      'environments:\n  production:\n    reviewers:\n      users: [alice, ghost]\n      teams: [acme/nobody]\n',
    );
    const result = await run(['apply', '--config', config, '--apply']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      'Reviewers of the environments file were not found on GitHub (2 problems)',
    );
    expect(result.stderr).toContain(
      "environments.production.reviewers.users[1]: there is no GitHub user 'ghost'",
    );
    expect(result.stderr).toContain(
      "environments.production.reviewers.teams[0]: there is no team 'nobody' in the organization 'acme'",
    );
    expect(writes()).toEqual([]);
  });

  test('usage errors: a missing repository, token or file, and plan --apply', async () => {
    const config = await writeConfig('usage.yml', FILE);
    const noRepo = await run(['plan', '--config', config], { GITHUB_REPOSITORY: undefined });
    expect(noRepo).toMatchObject({ code: 2 });
    expect(noRepo.stderr).toContain('no repository: pass --repo owner/name or set GITHUB_REPOSITORY');
    const noToken = await run(['plan', '--config', config], { GITHUB_TOKEN: undefined });
    expect(noToken.stderr).toContain('GITHUB_TOKEN is not set');
    const noFile = await run(['plan', '--config', 'missing.yml']);
    expect(noFile.stderr).toContain('cannot read the environments file missing.yml');
    const planApply = await run(['plan', '--apply', '--config', config]);
    expect(planApply.code).toBe(2);
    expect(planApply.stderr).toContain("'plan' never changes anything");
    expect(writes()).toEqual([]);
  });

  test('the token is never printed, even when GitHub echoes it in an error', async () => {
    gh.failNext(`GET /repos/${OWNER}/${REPO}/environments`, {
      status: 422,
      error: `token ${TOKEN} rejected`,
    });
    const config = await writeConfig('echo.yml', FILE);
    const result = await run(['plan', '--config', config], { GITHUB_ACTIONS: 'true' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('::error::Listing the environments of acme/shop failed (HTTP 422)');
    expect(result.stderr).toContain('token *** rejected');
    expect(printed.join('\n')).not.toContain(TOKEN);
  });

  test.each([
    ['a name that does not resolve', async () => 'http://github-api.invalid', /ENOTFOUND/],
    [
      'a refused connection',
      async () => {
        const closed = await LocalGitHub.start({ tokens: [TOKEN] });
        const url = closed.url;
        await closed.close();
        return url;
      },
      /ECONNREFUSED/,
    ],
  ])(
    '%s is reported as a network failure, never as an HTTP status',
    async (_what, apiUrl, code) => {
      const config = await writeConfig('network.yml', FILE);
      const result = await run(['plan', '--config', config], { GITHUB_API_URL: await apiUrl() });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        /error: Looking up the GitHub user alice failed: the GitHub API could not be reached \(/,
      );
      expect(result.stderr).toMatch(code);
      expect(result.stderr).not.toMatch(/HTTP 500/);
      expect(result.stderr).toMatch(/GitHub API not reachable \(E[A-Z]+\); retrying/);
    },
    30_000,
  );

  test('an error with %, \\r and \\n stays one workflow command, read back as written', async () => {
    const hostile = 'bad 100% \r::warning::forged\n::add-mask::nothing';
    gh.failNext(`GET /repos/${OWNER}/${REPO}/environments`, { status: 422, error: hostile });
    const config = await writeConfig('escape.yml', FILE);
    const result = await run(['plan', '--config', config], { GITHUB_ACTIONS: 'true' });
    expect(result.code).toBe(1);
    const { annotations, masks } = parseWorkflowCommands(result.stderr);
    expect(masks).toEqual([]);
    expect(annotations.map((a) => a.level)).toEqual(['error']);
    expect(annotations[0]!.message).toContain(hostile);
    expect(result.stderr.split(/\r\n|\r|\n/).filter((l) => l.startsWith('::'))).toHaveLength(1);
  });

  test('a 5xx is retried and the apply goes on', async () => {
    gh.failNext(`PUT /repos/${OWNER}/${REPO}/environments/production`, { status: 502 });
    const config = await writeConfig('retry.yml', FILE);
    const result = await run(['apply', '--config', config, '--apply']);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(
      'Creating the environment production: GitHub API answered HTTP 502; retrying',
    );
    expect(gh.environment(OWNER, REPO, 'production')?.wait_timer).toBe(30);
  });
});

describe('the pipeline command as a child process', () => {
  function spawnCli(args: string[], cwd: string, script = join(REPO_ROOT, 'bin', 'pipeline.js')) {
    return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [script, ...args], {
        cwd,
        env: {
          PATH: process.env.PATH,
          GITHUB_TOKEN: TOKEN,
          GITHUB_API_URL: gh.url,
          GITHUB_REPOSITORY: `${OWNER}/${REPO}`,
        },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => {
        stdout += d;
      });
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      child.on('error', reject);
      child.on('close', (code) => {
        printed.push(stdout, stderr);
        resolve({ code, stdout, stderr });
      });
    });
  }

  test('bin/pipeline.js environments apply --apply creates the environments of the example', async () => {
    const config = join(REPO_ROOT, 'examples', 'shop', '.github', 'environments.yml');
    gh.seedUser('shop-lead');
    gh.seedTeam('acme', 'shop-maintainers');
    const plan = await spawnCli(['environments', 'plan', '--config', config], dir);
    expect(plan.stderr).toBe('');
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain('+ production (create)');
    expect(writes()).toEqual([]);

    const applied = await spawnCli(['environments', 'apply', '--config', config, '--apply'], dir);
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    expect(policies('dev')).toEqual(['branch:feature/*']);
    expect(policies('staging')).toEqual(['branch:main']);
    expect(policies('production')).toEqual(['branch:main']);
    expect(gh.environment(OWNER, REPO, 'production')).toMatchObject({
      prevent_self_review: true,
      can_admins_bypass: false,
    });
    expect(gh.environment(OWNER, REPO, 'production')!.wait_timer).toBeGreaterThan(0);
    expect(gh.environment(OWNER, REPO, 'production')!.reviewers.length).toBeGreaterThan(0);
    expect(applied.stdout + applied.stderr).not.toContain(TOKEN);
  });

  test('unknown commands fail with the usage', async () => {
    const result = await spawnCli(['deploy'], dir);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("unknown command 'deploy'");
    expect(result.stderr).toContain('environments');
  });

  test('installed under node_modules (as npx finds it) it still runs its TypeScript', async () => {
    const project = await mkdtemp(join(tmpdir(), 'pipeline-npx-'));
    try {
      const pkg = join(project, 'node_modules', 'pipeline');
      await mkdir(pkg, { recursive: true });
      for (const part of ['bin', 'packages', 'tooling', 'package.json'])
        await cp(join(REPO_ROOT, part), join(pkg, part), { recursive: true });
      await symlink(join(REPO_ROOT, 'node_modules'), join(pkg, 'node_modules'));
      await writeFile(
        join(project, 'environments.yml'),
        'environments:\n  dev:\n    branches: [feature/*]\n',
      );
      const result = await spawnCli(
        ['environments', 'plan', '--config', 'environments.yml'],
        project,
        join(pkg, 'bin', 'pipeline.js'),
      );
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('+ dev (create)');
    } finally {
      await rm(project, { recursive: true, force: true });
    }
  });
});

describe('the environments file', () => {
  test('branch patterns follow git ref rules with fnmatch wildcards', () => {
    for (const ok of ['main', 'feature/*', 'release/v[0-9]*', 'hotfix/**', 'v?.*']) {
      expect(branchPatternProblem(ok)).toBeUndefined();
    }
    for (const bad of [
      '',
      '/main',
      'main/',
      'a..b',
      'a b',
      'a~1',
      'x:y',
      'refs/heads/main',
      'x[ab',
      'a.lock',
    ]) {
      expect(branchPatternProblem(bad)).toBeDefined();
    }
  });

  test('wait timers accept minutes or a duration in whole minutes', () => {
    const config = parseEnvironmentsConfig(
      'environments:\n  a: { wait-timer: 90 }\n  b: { wait-timer: 1h30m }\n  c: { wait-timer: "30d" }\n  d:\n',
    );
    expect(config.environments.map((e) => e.waitTimerMinutes)).toEqual([90, 90, 43_200, 0]);
    expect(() => parseEnvironmentsConfig('environments:\n  a: { wait-timer: 31d }\n')).toThrow(
      'environments.a.wait-timer: 44640 minutes is out of range',
    );
    expect(() => parseEnvironmentsConfig('environments:\n  a: { wait-timer: -1 }\n')).toThrow('out of range');
  });
});
