import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { runSummaryPage } from '../../tooling/rehearse/summary-page.ts';
import { REPO_ROOT } from '../../tooling/runners/action-runner.ts';
import { evaluateExpression, interpolate } from '../../tooling/runners/expressions.ts';
import {
  ANNOTATION_MESSAGE_LIMIT,
  type RunnerEvent,
  WorkflowRunner,
} from '../../tooling/runners/workflow-runner.ts';
import { renderSummary } from '../../tooling/test-support/summary-render.ts';

let workspace: string;
beforeAll(() => {
  workspace = mkdtempSync(join(tmpdir(), 'wf-'));
  mkdirSync(join(workspace, '.github', 'workflows'), { recursive: true });
});
afterAll(() => rmSync(workspace, { recursive: true, force: true }));

function write(name: string, content: string): string {
  const file = join(workspace, '.github', 'workflows', name);
  writeFileSync(file, content);
  return file;
}

function runner(approvals: Record<string, boolean> = {}, events: RunnerEvent[] = []) {
  return new WorkflowRunner({
    repoRoot: REPO_ROOT,
    workspace,
    event: {
      name: 'push',
      ref: 'refs/heads/main',
      sha: 'abc1234def',
      repository: 'acme/shop',
      actor: 'octocat',
      payload: { head_commit: { message: 'Ship it' } },
    },
    secrets: { TOKEN: 's3cret' },
    vars: { REGION: 'eu' },
    env: {},
    githubApiUrl: 'http://127.0.0.1:9',
    token: 'ghs_x',
    requiresApproval: (env) => env in approvals,
    approve: async (env) => approvals[env] ?? false,
    onEvent: (e) => events.push(e),
  });
}

describe("expressions with GitHub's evaluator", () => {
  test('operators, functions, contexts and interpolation', () => {
    const ctx = { inputs: { environment: 'dev', n: 2 }, github: { ref: 'refs/heads/main' } };
    expect(evaluateExpression("inputs.environment == 'dev' && 'plan' || 'up'", ctx)).toBe('plan');
    expect(evaluateExpression("startsWith(github.ref, 'refs/heads/feature/')", ctx)).toBe(false);
    expect(evaluateExpression('fromJSON(\'{"a":[1,2]}\').a[1]', ctx)).toBe(2);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a workflow expression under test
    expect(interpolate('deploy-${{ inputs.environment }}-${{ inputs.n }}', ctx)).toBe('deploy-dev-2');
    expect(() => evaluateExpression('inputs.environment ==', ctx)).toThrow(/cannot parse/);
  });
});

describe('the local workflow runner', () => {
  test('runs jobs in needs order with outputs, if:, reusable workflows, run steps and our actions', async () => {
    write(
      'called.yml',
      `on:
  workflow_call:
    inputs:
      who: { type: string, required: true }
      times: { type: number, default: 2 }
    secrets:
      token: { required: true }
    outputs:
      greeting: { value: "\${{ jobs.greet.outputs.text }}" }
jobs:
  greet:
    runs-on: ubuntu-latest
    environment: staging
    outputs:
      text: \${{ steps.say.outputs.text }}
    steps:
      - id: say
        env:
          WHO: \${{ inputs.who }}
          SECRET_LEN: \${{ format('{0}', secrets.token) }}
        run: echo "text=hello $WHO x\${{ inputs.times }} (\${#SECRET_LEN})" >> "$GITHUB_OUTPUT"
`,
    );
    const caller = write(
      'caller.yml',
      `on: push
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      image: \${{ steps.ref.outputs.image }}
    steps:
      - uses: actions/checkout@v4
      - id: ref
        run: echo "image=registry/shop@sha256:\${{ github.sha }}" >> "$GITHUB_OUTPUT"
  call:
    needs: build
    uses: ./.github/workflows/called.yml
    with:
      who: \${{ needs.build.outputs.image }}
    secrets:
      token: \${{ secrets.TOKEN }}
  summary:
    needs: [build, call]
    runs-on: ubuntu-latest
    steps:
      - uses: acme/pipeline/notify@v1
        with:
          event: custom
          text: \${{ needs.call.outputs.greeting }}
          app: shop
  on-failure:
    needs: call
    if: failure()
    runs-on: ubuntu-latest
    steps:
      - run: echo never
`,
    );
    const events: RunnerEvent[] = [];
    const run = await runner({ staging: true }, events).runWorkflow(caller);
    expect(
      run.jobs.flatMap((j) => j.steps.filter((s) => s.error).map((s) => `${j.path}: ${s.error}`)),
    ).toEqual([]);
    expect(run.conclusion).toBe('success');
    const byPath = Object.fromEntries(run.jobs.map((j) => [j.path, j]));
    expect(byPath.build!.steps[0]).toMatchObject({
      kind: 'skipped-action',
      uses: 'actions/checkout@v4',
      conclusion: 'skipped',
    });
    expect(byPath.build!.outputs.image).toBe('registry/shop@sha256:abc1234def');
    expect(byPath['call/greet']!.outputs.text).toBe('hello registry/shop@sha256:abc1234def x2 (6)');
    expect(byPath.call!.outputs.greeting).toBe('hello registry/shop@sha256:abc1234def x2 (6)');
    expect(byPath.summary!.steps[0]).toMatchObject({ kind: 'action', conclusion: 'success' });
    expect(byPath.summary!.steps[0]!.summary).toContain(
      'hello registry/shop&#64;sha256:abc1234def x2 \\(6\\)',
    );
    expect(byPath['on-failure']!.conclusion).toBe('skipped');
    expect(events.filter((e) => e.type === 'approval')).toEqual([
      expect.objectContaining({ environment: 'staging', approved: true }),
    ]);
  });

  test('a failed step skips the rest unless if: failure() or always(); a rejected environment fails its job', async () => {
    const file = write(
      'fail.yml',
      `on: push
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: exit 3
      - run: echo skipped
      - if: failure()
        id: cleanup
        run: echo "ran=yes" >> "$GITHUB_OUTPUT"
      - if: always()
        run: echo always
  b:
    needs: a
    runs-on: ubuntu-latest
    steps: [{ run: echo b }]
  c:
    needs: a
    if: always()
    runs-on: ubuntu-latest
    environment: production
    steps: [{ run: echo c }]
`,
    );
    const run = await runner({ production: false }).runWorkflow(file);
    expect(run.conclusion).toBe('failure');
    const [a, b, c] = ['a', 'b', 'c'].map((id) => run.jobs.find((j) => j.id === id)!);
    expect(a!.steps.map((s) => s.conclusion)).toEqual(['failure', 'skipped', 'success', 'success']);
    expect(a!.steps[0]!.error).toBe('exit code 3');
    expect(b!.conclusion).toBe('skipped');
    expect(c).toMatchObject({ conclusion: 'failure', reason: 'the deployment to production was rejected' });
  });

  test('a malformed GITHUB_OUTPUT record fails its step, as the runner does, and the run goes on', async () => {
    const file = write(
      'bad-output.yml',
      `on: push
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: printf 'x<<EOF\\nno end\\n' >> "$GITHUB_OUTPUT"
      - if: failure()
        run: echo after
`,
    );
    const run = await runner().runWorkflow(file);
    expect(run.conclusion).toBe('failure');
    const a = run.jobs.find((j) => j.id === 'a')!;
    expect(a.steps.map((s) => s.conclusion)).toEqual(['failure', 'success']);
    expect(a.steps[0]!.log).toContain(
      "Unable to process file command successfully: Unterminated heredoc for 'x'",
    );
  });

  test('a missing required input of a reusable workflow is an error naming it', async () => {
    write(
      'needs-input.yml',
      'on:\n  workflow_call:\n    inputs:\n      env: { type: string, required: true }\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps: [{ run: "true" }]\n',
    );
    const file = write(
      'calls-without.yml',
      'on: push\njobs:\n  c:\n    uses: ./.github/workflows/needs-input.yml\n',
    );
    await expect(runner().runWorkflow(file)).rejects.toThrow(/the required input 'env' was not given/);
  });

  test('run: steps see the same runner variables as action steps (one builder for both)', async () => {
    const file = write(
      'env.yml',
      `on: push
jobs:
  show:
    runs-on: ubuntu-latest
    steps:
      - id: vars
        run: |
          for v in GITHUB_RUN_ID GITHUB_JOB GITHUB_SERVER_URL RUNNER_OS RUNNER_ARCH GITHUB_REPOSITORY_OWNER GITHUB_REF_TYPE GITHUB_WORKFLOW; do
            echo "$v=\${!v}" >> "$GITHUB_OUTPUT"
          done
          test -s "$GITHUB_EVENT_PATH"
`,
    );
    const r = new WorkflowRunner({
      repoRoot: REPO_ROOT,
      workspace,
      event: {
        name: 'push',
        ref: 'refs/heads/main',
        sha: 'abc',
        repository: 'acme/shop',
        actor: 'octocat',
        payload: { a: 1 },
      },
      secrets: {},
      vars: {},
      env: {},
      githubApiUrl: 'http://127.0.0.1:9',
      token: 'ghs_x',
      runId: '777',
      requiresApproval: () => false,
      approve: async () => true,
    });
    const run = await r.runWorkflow(file);
    expect(run.jobs[0]!.steps[0]!.outputs).toEqual({
      GITHUB_RUN_ID: '777',
      GITHUB_JOB: 'show',
      GITHUB_SERVER_URL: 'https://github.com',
      RUNNER_OS: 'Linux',
      RUNNER_ARCH: 'X64',
      GITHUB_REPOSITORY_OWNER: 'acme',
      GITHUB_REF_TYPE: 'branch',
      GITHUB_WORKFLOW: 'release',
    });
  });

  test("a step's env cannot redirect GITHUB_OUTPUT, in a run: step or one of our actions", async () => {
    // The runner runs only this suite's actions: a probe stands in for notify in a root of its own.
    const root = mkdtempSync(join(tmpdir(), 'wf-root-'));
    mkdirSync(join(root, 'notify'));
    writeFileSync(
      join(root, 'notify', 'action.yml'),
      'name: probe\nruns:\n  using: node24\n  main: main.mjs\n',
    );
    writeFileSync(
      join(root, 'notify', 'main.mjs'),
      "import { appendFileSync } from 'node:fs';\nappendFileSync(process.env.GITHUB_OUTPUT, 'from=action\\n');\n",
    );
    const decoy = join(root, 'decoy');
    writeFileSync(decoy, '');
    const file = write(
      'redirect.yml',
      `on: push
jobs:
  j:
    runs-on: ubuntu-latest
    env:
      GITHUB_OUTPUT: ${decoy}
    steps:
      - id: script
        env:
          GITHUB_OUTPUT: ${decoy}
          GITHUB_STEP_SUMMARY: ${decoy}
        run: |
          echo "from=run" >> "$GITHUB_OUTPUT"
          echo "### ran" >> "$GITHUB_STEP_SUMMARY"
      - id: action
        uses: ./notify
        env:
          GITHUB_OUTPUT: ${decoy}
`,
    );
    try {
      const r = new WorkflowRunner({
        repoRoot: root,
        workspace,
        event: {
          name: 'push',
          ref: 'refs/heads/main',
          sha: 'abc',
          repository: 'acme/shop',
          actor: 'octocat',
          payload: {},
        },
        secrets: {},
        vars: {},
        env: { GITHUB_OUTPUT: decoy },
        githubApiUrl: 'http://127.0.0.1:9',
        token: 'ghs_x',
        requiresApproval: () => false,
        approve: async () => true,
      });
      const [script, action] = (await r.runWorkflow(file)).jobs[0]!.steps;
      expect(script).toMatchObject({
        kind: 'run',
        conclusion: 'success',
        outputs: { from: 'run' },
        summary: '### ran\n',
      });
      expect(action).toMatchObject({ kind: 'action', conclusion: 'success', outputs: { from: 'action' } });
      expect(readFileSync(decoy, 'utf8')).toBe('');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('a job that names an environment gets a GitHub deployment with in_progress and its final status', async () => {
    const { LocalGitHub } = await import('../../tooling/local-services/local-github.ts');
    const github = await LocalGitHub.start({ tokens: ['ghs_x'] });
    try {
      const file = write(
        'environments.yml',
        `on: push
jobs:
  ok:
    runs-on: ubuntu-latest
    environment: staging
    steps: [{ run: "true" }]
  broken:
    runs-on: ubuntu-latest
    environment: { name: production }
    steps: [{ run: "exit 1" }]
  plain:
    runs-on: ubuntu-latest
    steps: [{ run: "true" }]
`,
      );
      const r = new WorkflowRunner({
        repoRoot: REPO_ROOT,
        workspace,
        event: {
          name: 'push',
          ref: 'refs/heads/main',
          sha: 'f'.repeat(40),
          repository: 'acme/shop',
          actor: 'octocat',
          payload: {},
        },
        secrets: {},
        vars: {},
        env: {},
        githubApiUrl: github.url,
        token: 'ghs_x',
        recordEnvironmentDeployments: true,
        requiresApproval: () => false,
        approve: async () => true,
      });
      await r.runWorkflow(file);
      expect(
        github.deployments.map((d) => [d.environment, d.ref, d.statuses.map((s) => s.state).join('>')]),
      ).toEqual([
        ['staging', 'f'.repeat(40), 'in_progress>success'],
        ['production', 'f'.repeat(40), 'in_progress>failure'],
      ]);
    } finally {
      await github.close();
    }
  });

  test("an environment's branch policy stops a job of another branch before any approval, as GitHub does", async () => {
    const file = write(
      'policy.yml',
      `on: push
jobs:
  prod:
    runs-on: ubuntu-latest
    environment: production
    steps: [{ run: "echo deployed" }]
`,
    );
    const asked: string[] = [];
    const r = new WorkflowRunner({
      repoRoot: REPO_ROOT,
      workspace,
      event: {
        name: 'push',
        ref: 'refs/heads/feature/x',
        sha: 'abc',
        repository: 'acme/shop',
        actor: 'octocat',
        payload: {},
      },
      secrets: {},
      vars: {},
      env: {},
      githubApiUrl: 'http://127.0.0.1:9',
      token: 'ghs_x',
      allowsRef: (env, ref) => env !== 'production' || ref === 'refs/heads/main',
      requiresApproval: () => true,
      approve: async (env) => {
        asked.push(env);
        return true;
      },
    });
    const run = await r.runWorkflow(file);
    expect(run.jobs[0]).toMatchObject({
      conclusion: 'failure',
      reason:
        'Branch "feature/x" is not allowed to deploy to production due to environment protection rules.',
      steps: [],
    });
    expect(asked).toEqual([]);
  });

  test("annotations are kept as GitHub keeps them, and the run page puts them above every job's summary", async () => {
    const file = write(
      'annotations.yml',
      `on: push
jobs:
  first:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo '### the first job finished first' >> "$GITHUB_STEP_SUMMARY"
          for i in $(seq 1 12); do echo "::warning::warning $i"; done
          echo '::debug::not an annotation'
  second:
    needs: first
    runs-on: ubuntu-latest
    steps:
      - env:
          SECRET: \${{ secrets.TOKEN }}
        run: |
          echo '### the second job' >> "$GITHUB_STEP_SUMMARY"
          echo '::add-mask::hunter2'
          long=$(head -c 5000 /dev/zero | tr '\\0' x)
          echo "::notice title=Plan%3A shop%2C production::line one%0Athe password hunter2, the secret $SECRET%0A<b>not bold</b>"
          echo "::error::$long"
`,
    );
    const run = await runner().runWorkflow(file);
    const [first, second] = run.jobs;
    // At most 10 of a level per step, as actions/runner keeps them; debug is no annotation.
    expect(first!.steps[0]!.annotations.map((a) => a.message)).toEqual(
      Array.from({ length: 10 }, (_, i) => `warning ${i + 1}`),
    );
    const [notice, error] = second!.steps[0]!.annotations;
    expect(notice).toEqual({
      level: 'notice',
      message: 'line one\nthe password ***, the secret ***\n<b>not bold</b>',
      properties: { title: 'Plan: shop, production' },
    });
    expect(error!.message).toHaveLength(ANNOTATION_MESSAGE_LIMIT);

    const page = runSummaryPage(run);
    const rendered = await renderSummary(page);
    // Annotations first (the second job's notice among them), then the summaries in job order.
    expect(rendered.text.indexOf('Annotations')).toBe(0);
    expect(rendered.text.indexOf('Plan: shop, production')).toBeLessThan(
      rendered.text.indexOf('the first job finished first'),
    );
    expect(rendered.text.indexOf('the first job finished first')).toBeLessThan(
      rendered.text.indexOf('the second job'),
    );
    expect(rendered.annotations).toHaveLength(12);
    // Plain text: the message's HTML shows as typed, its line breaks kept.
    expect(rendered.annotations[10]!.text).toContain(
      'line one\nthe password ***, the secret ***\n<b>not bold</b>',
    );
  }, 60_000);
});
