import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { type CommitRecord, LocalGitHub } from '../../tooling/local-services/local-github.ts';
import { LocalSlack } from '../../tooling/local-services/local-slack.ts';
import { runBuiltAction, type StepResult } from '../../tooling/runners/action-runner.ts';
import { renderSummary } from '../../tooling/test-support/summary-render.ts';

/**
 * The top of the production plan through the built notify bundle: the staging deployment of the
 * same digest and its last status read from GitHub (or a warning), the commits since production's
 * last successful deployment from the compare API, and the approval message's clickable link.
 */

const TOKEN = 'xoxb-local-test-token';
const IMAGE = `ghcr.io/acme/shop@sha256:${'4f'.repeat(32)}`;
const OTHER = `ghcr.io/acme/shop@sha256:${'9c'.repeat(32)}`;
const sha = (n: number) => n.toString(16).padStart(2, '0').repeat(20);
const HISTORY: CommitRecord[] = [
  {
    sha: sha(1),
    message: 'Release 1.4',
    login: 'octocat',
    author: { name: 'Mona', email: 'mona@example.com', date: '2026-11-01T10:00:00Z' },
  },
  {
    sha: sha(2),
    message: 'Faster checkout: batch the price lookups (#41)\n\nBody',
    login: 'hubot',
    author: { name: 'Hubot', email: 'hubot@example.com', date: '2026-11-02T10:00:00Z' },
  },
  {
    sha: sha(3),
    message: 'Fix <b>typo</b> in *docs*',
    login: null,
    author: { name: 'A. Contributor', email: 'a@example.org', date: '2026-11-03T10:00:00Z' },
  },
  {
    sha: sha(4),
    message: 'Merge pull request #42 from acme/feature/faster-checkout',
    login: 'octocat',
    author: { name: 'Mona', email: 'mona@example.com', date: '2026-11-04T10:00:00Z' },
  },
];

let github: LocalGitHub;
let slack: LocalSlack;
beforeAll(async () => {
  github = await LocalGitHub.start();
  slack = await LocalSlack.start({ tokens: [TOKEN] });
});
afterAll(async () => {
  await github.close();
  await slack.close();
});
afterEach(() => {
  github.deployments.length = 0;
  github.commits.clear();
  github.requests.length = 0;
});

function plan(inputs: Record<string, string> = {}): Promise<StepResult> {
  return runBuiltAction('notify', {
    inputs: {
      event: 'awaiting-approval',
      app: 'shop',
      environment: 'production',
      version: IMAGE,
      stages: 'staging=succeeded,production=awaiting-approval',
      provenance: 'staging',
      'commits-since': 'production',
      ...inputs,
    },
    github: { apiUrl: github.url, sha: sha(4) },
  });
}

function seedRelease(): void {
  github.seedCommits('acme', 'shop', HISTORY);
  const production = github.seedDeployment({
    owner: 'acme',
    repo: 'shop',
    environment: 'production',
    sha: sha(1),
    payload: { images: { 'ghcr.io/acme/shop': OTHER } },
  });
  production.statuses.push({
    id: 1,
    state: 'success',
    description: 'Deployed',
    environment: 'production',
    environment_url: '',
    log_url: '',
    created_at: '2026-11-01T11:00:00Z',
  });
  const staging = github.seedDeployment({
    owner: 'acme',
    repo: 'shop',
    environment: 'staging',
    sha: sha(4),
    payload: { images: { 'ghcr.io/acme/shop': IMAGE } },
    created_at: '2026-11-04T11:00:00Z',
  });
  staging.statuses.push(
    {
      id: 2,
      state: 'in_progress',
      description: 'Deploying shop',
      environment: 'staging',
      environment_url: '',
      log_url: '',
      created_at: '2026-11-04T11:00:00Z',
    },
    {
      id: 3,
      state: 'success',
      description: 'Deployed shop to shop-staging',
      environment: 'staging',
      environment_url: '',
      log_url: 'https://github.com/acme/shop/actions/runs/7',
      created_at: '2026-11-04T11:01:00Z',
    },
  );
}

/** The status deploy.yml records after staging's health gate: health-gate's verdict-line. */
function seedSoak(state: 'success' | 'failure', description: string): void {
  github.deployments
    .find((d) => d.environment === 'staging')!
    .statuses.push({
      id: 10 + github.deployments.flatMap((d) => d.statuses).length,
      state,
      description,
      environment: 'staging',
      environment_url: '',
      log_url: 'https://github.com/acme/shop/actions/runs/7',
      created_at: '2026-11-04T11:06:00Z',
    });
}
const PASSED = 'health gate passed: 10 rounds over 5m; checks: health, error rate, p99 latency';

describe('notify provenance and commits-since', () => {
  test("a release staging ran healthy: its deployment and its health gate's verdict, the commits with authors and PR links, the diagram", async () => {
    seedRelease();
    seedSoak('success', PASSED);
    const step = await plan();
    expect(step.exitCode).toBe(0);
    // What was asked of GitHub: the deployments of both environments and one comparison, base...head.
    const gets = github.requests.filter((r) => r.method === 'GET').map((r) => r.path);
    expect(gets).toContain(`/repos/acme/shop/compare/${sha(1)}...${sha(4)}`);
    expect(gets.filter((p) => p.includes('/compare/'))).toHaveLength(1);
    expect(step.outputs.provenance).toMatch(
      /^staging ran it healthy \(deployment \d+, health gate passed: 10 rounds over 5m\)$/,
    );
    expect(step.outputs.commits).toBe('3');
    const md = step.summary;
    expect(md).toMatch(
      /✅ \*\*staging ran this image healthy\*\*: deployment \[\d+\]\(https:\/\/github\.com\/acme\/shop\/actions\/runs\/7\) of commit `0404040` on 2026-11-04 11:00:00 UTC, health gate \*\*passed\*\*: 10 rounds over 5m; checks: health, error rate, p99 latency\./,
    );
    expect(md).toContain("**3 commits since production's last release**");
    expect(md).toContain(
      'Faster checkout: batch the price lookups \\(\\#41\\) — `hubot` · [#41](https://github.com/acme/shop/pull/41)',
    );
    expect(md).toContain('— `octocat` · [#42](https://github.com/acme/shop/pull/42)');
    // Untrusted commit text cannot open HTML or emphasis; a name without an account is plain text.
    expect(md).toContain('Fix &lt;b&gt;typo&lt;/b&gt; in \\*docs\\* — A\\. Contributor');
    expect(md).not.toContain('Release 1.4');
    // The plan sits above the stage diagram, which shows production awaiting approval.
    expect(md.indexOf('staging ran this image')).toBeLessThan(md.indexOf('```mermaid'));
    expect(md).toContain('⏸️ awaiting approval');
    const rendered = await renderSummary(md);
    expect(rendered.mermaidErrors).toEqual([]);
    expect(rendered.text).not.toMatch(/\\[-.()_@#*]|&#\d+;/);
  }, 60_000);

  test('an image staging never ran: a warning on the page and in the annotations', async () => {
    seedRelease();
    const step = await plan({ version: `ghcr.io/acme/shop@sha256:${'ab'.repeat(32)}` });
    expect(step.exitCode).toBe(0);
    expect(step.outputs.provenance).toBe('staging never ran this image');
    expect(step.summary).toContain('> [!WARNING]\n> **staging never ran this image.**');
    expect(step.summary).toContain(`\`sha256:${'ab'.repeat(32)}\``);
    expect(
      step.annotations.some(
        (a) => a.level === 'warning' && a.message.startsWith('staging never ran this image'),
      ),
    ).toBe(true);
  }, 60_000);

  test("staging's failed soak is a caution, with the gate's own words, and a warning annotation", async () => {
    seedRelease();
    seedSoak('failure', 'health gate failed: 3 rounds over 1m30s; checks: health, error rate (failed)');
    const step = await plan();
    expect(step.exitCode).toBe(0);
    expect(step.outputs.provenance).toMatch(
      /^staging ran it and it FAILED there \(deployment \d+, health gate failed: 3 rounds over 1m30s\)$/,
    );
    expect(step.summary).toContain('> [!CAUTION]\n> **staging ran this image and it failed there**');
    expect(step.summary).toMatch(
      /health gate \*\*failed\*\*: 3 rounds over 1m30s; checks: health, error rate \\\(failed\\\)\./,
    );
    expect(step.annotations.some((a) => a.level === 'warning' && a.message.includes('FAILED there'))).toBe(
      true,
    );
  }, 60_000);

  test('an inconclusive staging soak is no pass: a caution and a warning, though the rollout succeeded', async () => {
    seedRelease();
    seedSoak('failure', 'health gate inconclusive: 4 rounds over 2m; checks: health, error rate (no data)');
    // A status written after the gate's (notify's failure with the job's reason) does not hide it.
    seedSoak('failure', 'the health gate failed');
    const step = await plan();
    expect(step.outputs.provenance).toMatch(
      /^staging ran it but its health gate was INCONCLUSIVE \(deployment \d+, health gate inconclusive: 4 rounds over 2m\)$/,
    );
    expect(step.summary).toContain("> **staging's health gate was inconclusive for this image**");
    expect(step.summary).toContain('error rate \\(no data\\)');
    expect(step.annotations.some((a) => a.level === 'warning' && a.message.includes('INCONCLUSIVE'))).toBe(
      true,
    );
    const rendered = await renderSummary(step.summary);
    expect(rendered.text).toContain('error rate (no data)');
  }, 60_000);

  test('a staging rollout without a health gate verdict is not called healthy', async () => {
    seedRelease();
    const step = await plan();
    expect(step.outputs.provenance).toMatch(
      /^staging ran it without a health gate verdict \(deployment \d+: success\)$/,
    );
    expect(step.summary).toContain(
      '> [!WARNING]\n> **staging ran this image without a health gate verdict**',
    );
    expect(step.summary).toContain('last status `success`: Deployed shop to shop\\-staging');
    expect(step.annotations.some((a) => a.level === 'warning')).toBe(true);
  }, 60_000);

  test('a first production release compares nothing and says so', async () => {
    seedRelease();
    github.deployments.splice(
      github.deployments.findIndex((d) => d.environment === 'production'),
      1,
    );
    const step = await plan();
    expect(step.exitCode).toBe(0);
    expect(step.outputs.commits).toBe('');
    expect(github.requests.some((r) => r.path.includes('/compare/'))).toBe(false);
    expect(step.summary).toContain('🆕 **First release to production**');
  }, 60_000);

  test('a base GitHub no longer knows is told in the plan, not a failed step', async () => {
    seedRelease();
    github.deployments.find((d) => d.environment === 'production')!.sha = 'ee'.repeat(20);
    const step = await plan();
    expect(step.exitCode).toBe(0);
    expect(step.outputs.commits).toBe('');
    expect(step.summary).toContain("Commits since production's last release: not known.");
    expect(step.summary).toContain('HTTP 404');
  }, 60_000);

  test('bad inputs: a tag with provenance is refused before any request', async () => {
    const step = await plan({ version: 'ghcr.io/acme/shop:latest' });
    expect(step.exitCode).toBe(1);
    expect(step.annotations.filter((a) => a.level === 'error').map((a) => a.message)).toEqual([
      expect.stringMatching(/^Input 'version' must be an image reference by digest/),
    ]);
    expect(github.requests).toEqual([]);
  }, 60_000);
});

describe('the approval link', () => {
  test('is a Slack link <url|text> with the text escaped; a non-http URL is refused', async () => {
    const step = await runBuiltAction('notify', {
      inputs: {
        event: 'awaiting-approval',
        app: 'shop',
        environment: 'production',
        'slack-api-url': slack.apiUrl,
        'slack-token': TOKEN,
        channel: '#deploys',
        text: 'production plan: 3 commit(s); 1 migration(s) to run (3), 0 lint finding(s); objects: 1 changed',
        'link-url': 'https://github.com/acme/shop/actions/runs/4242',
        'link-text': 'Review <the> plan & approve',
      },
      github: { apiUrl: github.url },
    });
    expect(step.exitCode).toBe(0);
    const [call] = slack.callsOf('chat.postMessage');
    const lead = (call!.args.blocks as { type: string; text?: { text: string } }[])[1]!.text!.text;
    expect(lead).toBe(
      'production plan: 3 commit(s); 1 migration(s) to run (3), 0 lint finding(s); objects: 1 changed <https://github.com/acme/shop/actions/runs/4242|Review &lt;the&gt; plan &amp; approve>',
    );
    expect(call?.args.text).toContain('<https://github.com/acme/shop/actions/runs/4242|');

    const bad = await runBuiltAction('notify', {
      inputs: { event: 'custom', text: 'x', 'link-url': 'javascript:alert(1)' },
      github: { apiUrl: github.url },
    });
    expect(bad.exitCode).toBe(1);
    expect(bad.annotations.find((a) => a.level === 'error')?.message).toMatch(/^Input 'link-url'/);
  }, 60_000);
});
