import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import { LocalGitHub } from '../../tooling/local-services/local-github.ts';
import { LocalSlack, validateBlocks } from '../../tooling/local-services/local-slack.ts';
import { findLeaks, runBuiltAction, type StepResult } from '../../tooling/runners/action-runner.ts';

const TOKEN = 'xoxb-local-test-token';
let slack: LocalSlack;
let github: LocalGitHub;

beforeAll(async () => {
  slack = await LocalSlack.start({ tokens: [TOKEN] });
  github = await LocalGitHub.start();
});
afterAll(async () => {
  await slack.close();
  await github.close();
});
beforeEach(() => {
  slack.calls.length = 0;
  slack.messages.length = 0;
  slack.webhookPosts.length = 0;
});

const commit = { head_commit: { message: 'Add checkout retries\n\nLonger body that is not shown' } };

function run(
  inputs: Record<string, string>,
  extra: { payload?: Record<string, unknown>; headRef?: string } = {},
): Promise<StepResult> {
  return runBuiltAction('notify', {
    inputs: { 'slack-api-url': slack.apiUrl, ...inputs },
    github: {
      apiUrl: github.url,
      payload: extra.payload ?? commit,
      ...(extra.headRef ? { headRef: extra.headRef, eventName: 'pull_request' } : {}),
    },
  });
}

function errors(step: StepResult): string[] {
  return step.annotations.filter((a) => a.level === 'error').map((a) => a.message);
}

type Block = {
  type: string;
  text?: { text: string };
  fields?: { text: string }[];
  elements?: { text?: unknown; url?: string }[];
};

describe('notify through the runner contract', () => {
  test('started: posts one message with the release facts and returns ts, channel and its link', async () => {
    const step = await run({
      event: 'started',
      'slack-token': TOKEN,
      channel: '#deploys',
      app: 'shop',
      environment: 'staging',
      'environment-url': 'https://staging.shop.example.com',
      version: 'ghcr.io/acme/shop@sha256:4f2a',
      stages: 'dev=succeeded, staging=pending, production=pending',
    });
    expect(step.exitCode).toBe(0);
    expect(errors(step)).toEqual([]);
    const [call] = slack.callsOf('chat.postMessage');
    expect(call?.token).toBe(TOKEN);
    expect(call?.args.channel).toBe('#deploys');
    expect(call?.args.text).toBe('Deploying shop to staging (ghcr.io/acme/shop@sha256:4f2a)');
    const blocks = call?.args.blocks as Block[];
    expect(validateBlocks(blocks)).toEqual([]);
    expect(blocks[0]).toEqual({
      type: 'header',
      text: { type: 'plain_text', text: '🚀 Deploying shop to staging', emoji: true },
    });
    const fields = blocks.find((b) => b.fields)!.fields!.map((f) => f.text);
    expect(fields).toEqual([
      '*Environment*\n<https://staging.shop.example.com|staging>',
      '*Version*\nghcr.io/acme/shop@sha256:4f2a',
      '*Actor*\noctocat',
      '*Branch*\nmain',
      '*Commit*\n<https://github.com/acme/shop/commit/a1b2c3d4e5f60718293a4b5c6d7e8f9012345678|a1b2c3d> Add checkout retries',
      '*Run*\n<https://github.com/acme/shop/actions/runs/4242|deploy #4242>',
    ]);
    const stages = blocks.find((b) => b.type === 'context')!.elements![0]!.text;
    expect(stages).toBe('✅ dev  →  🔄 staging  →  ⚪ production');
    const buttons = blocks.find((b) => b.type === 'actions')!.elements!.map((e) => e.url);
    expect(buttons).toEqual([
      'https://github.com/acme/shop/actions/runs/4242',
      'https://staging.shop.example.com',
    ]);

    expect(step.outputs.ts).toBe(slack.messages[0]!.ts);
    expect(step.outputs.channel).toBe('C0DEPLOYS');
    expect(step.outputs['thread-ts']).toBe('');
    expect(step.outputs['message-url']).toBe(
      `https://acme.slack.com/archives/C0DEPLOYS/p${step.outputs.ts!.replace('.', '')}`,
    );
    expect(step.masks).toContain(TOKEN);
    expect(findLeaks(step, TOKEN)).toEqual([]);
  });

  test('later events update the same message in place and reply in its thread', async () => {
    const first = await run({
      event: 'started',
      'slack-token': TOKEN,
      channel: 'deploys',
      app: 'shop',
      environment: 'production',
    });
    const { ts, channel } = first.outputs;
    const second = await run({
      event: 'succeeded',
      'slack-token': TOKEN,
      channel: channel!,
      ts: ts!,
      app: 'shop',
      environment: 'production',
      version: 'v2',
    });
    expect(second.exitCode).toBe(0);
    expect(slack.messages.filter((m) => !m.threadTs)).toHaveLength(1);
    const living = slack.messages[0]!;
    expect(living.edits).toHaveLength(1);
    expect((living.blocks[0] as Block).text!.text).toBe('✅ shop deployed to production');
    const update = slack.callsOf('chat.update')[0]!;
    expect(update.args).toMatchObject({ channel: 'C0DEPLOYS', ts });
    const reply = slack.messages.find((m) => m.threadTs === ts)!;
    expect(reply.text).toBe('✅ shop deployed to production · v2');
    expect(second.outputs).toMatchObject({ ts, channel: 'C0DEPLOYS', 'thread-ts': reply.ts });

    const quiet = await run({
      event: 'failed',
      'slack-token': TOKEN,
      channel: channel!,
      ts: ts!,
      'thread-reply': 'false',
      app: 'shop',
    });
    expect(quiet.exitCode).toBe(0);
    expect(slack.messages.filter((m) => m.threadTs === ts)).toHaveLength(1);
    expect(quiet.outputs['thread-ts']).toBe('');
  });

  test.each([
    ['started', '🚀 Deploying shop to production', false],
    ['succeeded', '✅ shop deployed to production', false],
    ['failed', '❌ shop failed to deploy to production', true],
    ['rolled-back', '↩️ shop rolled back in production', true],
    ['awaiting-approval', '⏸️ shop is waiting for approval to deploy to production', false],
    ['custom', 'ℹ️ shop · production', false],
  ])(
    '%s renders its headline, and mentions on-call only when someone must act',
    async (event, header, mentions) => {
      const step = await run({
        event,
        'slack-token': TOKEN,
        channel: 'deploys',
        app: 'shop',
        environment: 'production',
        text: 'Error rate 7% over 5m',
        mention: 'S0ONCALL, U0LEAD',
      });
      expect(step.exitCode).toBe(0);
      const call = slack.callsOf('chat.postMessage')[0]!;
      const blocks = call.args.blocks as Block[];
      expect(validateBlocks(blocks)).toEqual([]);
      expect(blocks[0]!.text!.text).toBe(header);
      const lead = blocks[1]!.text!.text;
      expect(lead.includes('<!subteam^S0ONCALL> <@U0LEAD>')).toBe(mentions);
      expect(String(call.args.text).includes('<!subteam^S0ONCALL>')).toBe(mentions);
      expect(lead).toContain('Error rate 7% over 5m');
      expect(step.summary).toContain(`### ${header.replace(/\./g, '\\.')}`);
    },
  );

  test('untrusted branch names and commit messages cannot mention, link or format', async () => {
    const hostile =
      'Fix <!channel> *now* see <http://evil.example|docs> & _more_ `x` http://evil.example @here';
    const step = await run(
      {
        event: 'failed',
        'slack-token': TOKEN,
        channel: 'deploys',
        app: 'shop',
        environment: 'dev',
        text: '<@U0BOSS> did it',
      },
      { payload: { pull_request: { title: hostile } }, headRef: 'feature/<!here>' },
    );
    expect(step.exitCode).toBe(0);
    const call = slack.callsOf('chat.postMessage')[0]!;
    const everything = JSON.stringify(call.args);
    expect(everything).not.toContain('<!channel>');
    expect(everything).not.toContain('<!here>');
    expect(everything).not.toContain('<@U0BOSS>');
    expect(everything).not.toContain('<http://evil');
    expect(everything).not.toContain('http://evil');
    const fields = (call.args.blocks as Block[]).find((b) => b.fields)!.fields!.map((f) => f.text);
    expect(fields).toContain('*Branch*\nfeature/&lt;!here&gt;');
    const commitField = fields.find((f) => f.startsWith('*Commit*'))!;
    expect(commitField).toContain(
      'Fix &lt;!channel&gt; \u200b*now\u200b* see &lt;http:\u200b//evil.example|docs&gt; &amp; \u200b_more\u200b_',
    );
    // The summary is Markdown: no raw HTML, no links, no mentions.
    expect(step.summary).not.toContain('<!channel>');
    expect(step.summary).not.toContain('](http://evil');
    expect(step.summary).not.toContain('@here');
    expect(step.summary).toContain('feature/&lt;\\!here&gt;');
  });

  test('posts through an incoming webhook, which cannot return a ts', async () => {
    const step = await run({
      event: 'succeeded',
      'slack-webhook-url': slack.webhookUrl,
      app: 'shop',
      environment: 'dev',
    });
    expect(step.exitCode).toBe(0);
    expect(slack.webhookPosts).toHaveLength(1);
    const body = slack.webhookPosts[0]!.body as { text: string; blocks: Block[] };
    expect(body.text).toBe('shop deployed to dev');
    expect(validateBlocks(body.blocks)).toEqual([]);
    expect(body.blocks[0]!.text!.text).toBe('✅ shop deployed to dev');
    expect(step.outputs).toMatchObject({ ts: '', channel: '', 'message-url': '' });
    expect(findLeaks(step, slack.webhookUrl)).toEqual([]);
    expect(step.masks).toContain(slack.webhookUrl);
  });

  test('a rate-limited call waits what Retry-After asks, then succeeds', async () => {
    slack.failNext('chat.postMessage', { status: 429, retryAfter: 1 });
    const step = await run({ event: 'started', 'slack-token': TOKEN, channel: 'deploys', app: 'shop' });
    expect(step.exitCode).toBe(0);
    expect(slack.callsOf('chat.postMessage')).toHaveLength(2);
    const warnings = step.annotations.filter((a) => a.level === 'warning').map((a) => a.message);
    expect(warnings).toEqual(['Slack chat.postMessage: rate limited by Slack; attempt 2 of 5 in 1000 ms']);
    expect(step.outputs.ts).not.toBe('');
  });

  test('a webhook answering 429 and then 503 is retried until it posts', async () => {
    slack.failNext('webhook', { status: 429, retryAfter: 1 });
    slack.failNext('webhook', { status: 503 });
    const step = await run({ event: 'started', 'slack-webhook-url': slack.webhookUrl, app: 'shop' });
    expect(step.exitCode).toBe(0);
    expect(slack.webhookPosts).toHaveLength(1);
    expect(step.annotations.filter((a) => a.level === 'warning')).toHaveLength(2);
  });

  test('channel_not_found only warns by default, and fails the step with fail-on-error', async () => {
    const lenient = await run({
      event: 'started',
      'slack-token': TOKEN,
      channel: 'nowhere',
      app: 'shop',
      environment: 'dev',
    });
    expect(lenient.exitCode).toBe(0);
    expect(lenient.annotations.filter((a) => a.level === 'warning').map((a) => a.message)).toEqual([
      'Slack chat.postMessage failed: channel_not_found (fail-on-error is off, so the step goes on)',
    ]);
    expect(lenient.summary).toContain('Deploying shop to dev');

    const strict = await run({
      event: 'started',
      'slack-token': TOKEN,
      channel: 'nowhere',
      app: 'shop',
      'fail-on-error': 'true',
    });
    expect(strict.exitCode).toBe(1);
    expect(errors(strict)).toEqual(['Slack chat.postMessage failed: channel_not_found']);
    expect(slack.callsOf('chat.postMessage')).toHaveLength(2);
  });

  test('a Slack outage that outlasts the attempts fails the step with fail-on-error and says how often it tried', async () => {
    slack.failNext('chat.postMessage', { status: 503, times: 2 });
    const step = await run({
      event: 'started',
      'slack-token': TOKEN,
      channel: 'deploys',
      'max-attempts': '2',
      'fail-on-error': 'true',
    });
    expect(step.exitCode).toBe(1);
    expect(errors(step)[0]).toMatch(/^Slack chat\.postMessage failed: .*HTTP 503/);
    expect(slack.callsOf('chat.postMessage')).toHaveLength(2);
  });

  test('sends a deployment status with the environment and log URLs, retrying a 502', async () => {
    const deployment = github.seedDeployment({ owner: 'acme', repo: 'shop', environment: 'staging' });
    github.failNext(`POST /repos/acme/shop/deployments/${deployment.id}/statuses`, { status: 502 });
    const step = await run({
      event: 'succeeded',
      app: 'shop',
      environment: 'staging',
      'environment-url': 'https://staging.shop.example.com',
      'deployment-id': String(deployment.id),
    });
    expect(step.exitCode).toBe(0);
    expect(deployment.statuses).toHaveLength(1);
    expect(deployment.statuses[0]).toMatchObject({
      state: 'success',
      environment: 'staging',
      environment_url: 'https://staging.shop.example.com',
      log_url: 'https://github.com/acme/shop/actions/runs/4242',
    });
    const sent = github.requests.filter((r) => r.path.endsWith('/statuses'));
    expect(sent).toHaveLength(2);
    expect(sent[1]!.authorization).toBe('token ghs_harnessTokenValue0123456789');
    expect(findLeaks(step, 'ghs_harnessTokenValue0123456789')).toEqual([]);
  });

  test('writes a job summary with a Mermaid flowchart of the stages coloured by state', async () => {
    const step = await run({
      event: 'rolled-back',
      app: 'shop',
      environment: 'production',
      stages: 'dev=succeeded\nstaging=succeeded\nproduction=running',
      text: 'p99 latency above 800ms',
    });
    expect(step.exitCode).toBe(0);
    expect(step.summary).toContain('### ↩️ shop rolled back in production');
    expect(step.summary).toContain('> p99 latency above 800ms');
    expect(step.summary).toContain(
      's0["dev<br/>✅ succeeded"]:::succeeded --> s1["staging<br/>✅ succeeded"]:::succeeded --> s2["production<br/>↩️ rolled back"]:::rolled_back',
    );
    expect(step.summary).toMatch(/classDef rolled_back fill:#fff8c5/);
    expect(slack.calls).toHaveLength(0);
  });

  test.each([
    [
      { event: 'deployed' },
      'Input \'event\' has "deployed", which is not a known value. Accepted: one of started, succeeded, failed, rolled-back, awaiting-approval, custom.',
    ],
    [
      { event: 'started', 'slack-token': TOKEN },
      "Input 'channel' is required with slack-token. Accepted: a channel ID such as C0123ABCD (or a #name for the first message).",
    ],
    [
      { event: 'started', 'slack-token': TOKEN, 'slack-webhook-url': 'https://hooks.slack.com/services/x' },
      "Input 'slack-webhook-url' is set together with slack-token. Accepted: one of slack-token (with channel) or slack-webhook-url.",
    ],
    [
      { event: 'started', 'slack-token': TOKEN, channel: 'deploys', ts: 'yesterday' },
      "Input 'ts' has \"yesterday\", which does not match. Accepted: a Slack message timestamp such as 1700000000.123456 (the 'ts' output of an earlier notify step).",
    ],
    [
      { event: 'started', 'slack-webhook-url': 'https://hooks.slack.com/x', ts: '1.2' },
      "Input 'ts' needs slack-token: incoming webhooks cannot update a message. Accepted: a message timestamp together with slack-token and channel.",
    ],
    [
      { event: 'custom' },
      "Input 'text' is required for the 'custom' event. Accepted: the text of the message.",
    ],
    [
      { event: 'started', stages: 'dev=green' },
      'Input \'stages\' gives stage "dev" the unknown state "green". Accepted: one of pending, running, succeeded, failed, rolled-back, awaiting-approval, skipped, cancelled.',
    ],
    [
      { event: 'failed', mention: '@oncall-team' },
      'Input \'mention\' has "@oncall-team", which Slack cannot mention. Accepted: Slack user IDs (U…/W…), user group IDs (S…), here or channel.',
    ],
    [
      { event: 'started', 'max-attempts': '0' },
      "Input 'max-attempts' has 0, which is out of range. Accepted: a whole number from 1 to 10.",
    ],
    [
      { event: 'started', 'deployment-id': 'abc' },
      'Input \'deployment-id\' has "abc", which is not a whole number. Accepted: the numeric ID of a GitHub deployment (the deployment-id output of deploy-env).',
    ],
  ])('bad input %j fails with one error naming it, no stack, nothing sent', async (inputs, message) => {
    const before = slack.calls.length + github.requests.length;
    const step = await run(inputs);
    expect(step.exitCode).toBe(1);
    expect(errors(step)).toEqual([message]);
    expect(step.stdout).not.toMatch(/\n\s+at /);
    expect(slack.calls.length + github.requests.length).toBe(before);
    expect(step.summary).toBe('');
  });

  test('a malformed secret is masked before the error about it is printed', async () => {
    const secret = 'not a url but secret-ish 12345';
    const step = await run({ event: 'started', 'slack-webhook-url': secret });
    expect(step.exitCode).toBe(1);
    expect(errors(step)[0]).toMatch(/^Input 'slack-webhook-url' is not a URL/);
    expect(findLeaks(step, secret)).toEqual([]);
  });
});
