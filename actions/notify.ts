import { defineInputs, input } from '../packages/config/index.ts';
import { InputError, isLoopbackHost } from '../packages/core/index.ts';
import { DEPLOYMENT_STATES } from '../packages/github/deployment-states.ts';
import {
  NOTIFY_EVENTS,
  type NotifyEvent,
  notify,
  provenanceLine,
  provenanceVerdict,
  resolveStages,
  type SlackTarget,
  STAGE_STATE_ALIASES,
  STAGE_STATES,
  type Stage,
  type StageState,
} from '../packages/notify/index.ts';
import { runAction } from './runtime.ts';

/** GitHub's environment names: up to 255 characters, no control characters, quotes or slashes. */
const ENVIRONMENT_NAME = /^[^\p{Cc}"'`,;\\/]{1,255}$/u;

export const schema = defineInputs({
  event: input.enum(NOTIFY_EVENTS, { required: true }),
  app: input.string(),
  environment: input.string(),
  'environment-url': input.url({ public: true }),
  version: input.string(),
  text: input.string(),
  stages: input.map({
    accepted: `stage=state pairs in pipeline order, with states ${STAGE_STATES.join(', ')}`,
  }),
  mention: input.list({ accepted: 'Slack user IDs (U…/W…), user group IDs (S…), here or channel' }),
  'slack-token': input.secret(),
  // The path of an incoming webhook is its credential: masked on its own too.
  'slack-webhook-url': input.secret({ pathIsSecret: true }),
  channel: input.string(),
  ts: input.string({
    pattern: /^\d+\.\d+$/,
    accepted:
      "a Slack message timestamp such as 1700000000.123456 (the 'ts' output of an earlier notify step)",
  }),
  'thread-reply': input.boolean({ default: 'true' }),
  // The bot token travels to it in a header: never over plain http to another machine.
  'slack-api-url': input.url({ default: 'https://slack.com/api/', httpsExceptLoopback: true }),
  summary: input.boolean({ default: 'true' }),
  'github-token': input.secret(),
  'deployment-id': input.integer({
    min: 1,
    accepted: 'the numeric ID of a GitHub deployment (the deployment-id output of deploy-env)',
  }),
  'deployment-state': input.enum(DEPLOYMENT_STATES),
  'log-url': input.url({ public: true }),
  'max-attempts': input.integer({ default: '5', min: 1, max: 10 }),
  'fail-on-error': input.boolean({ default: 'false' }),
  'link-url': input.url({ public: true }),
  'link-text': input.string({ default: 'Review the run' }),
  provenance: input.string({
    pattern: ENVIRONMENT_NAME,
    accepted: 'the name of the environment that must have run the version first, such as staging',
  }),
  'commits-since': input.string({
    pattern: ENVIRONMENT_NAME,
    accepted:
      'the name of the environment whose last successful release the commits are counted from, such as production',
  }),
});

function parseStages(stages: Map<string, string> | undefined): Stage[] {
  const out: Stage[] = [];
  for (const [name, raw] of stages ?? []) {
    const text = raw.toLowerCase();
    const state = (STAGE_STATES as readonly string[]).includes(text)
      ? (text as StageState)
      : STAGE_STATE_ALIASES[text];
    if (!state) {
      throw new InputError(
        'stages',
        `gives stage ${JSON.stringify(name)} the unknown state ${JSON.stringify(raw)}`,
        `one of ${STAGE_STATES.join(', ')}`,
      );
    }
    out.push({ name, state });
  }
  return out;
}

function parseMentions(mentions: string[] | undefined): string[] {
  return (mentions ?? []).map((raw) => {
    const m = raw.replace(/^<[@!]?(subteam\^)?|>$/g, '').replace(/^@/, '');
    if (/^[UW][A-Z0-9]{2,}$/.test(m)) return `<@${m}>`;
    if (/^S[A-Z0-9]{2,}$/.test(m)) return `<!subteam^${m}>`;
    if (m === 'here' || m === 'channel') return `<!${m}>`;
    throw new InputError(
      'mention',
      `has ${JSON.stringify(raw)}, which Slack cannot mention`,
      'Slack user IDs (U…/W…), user group IDs (S…), here or channel',
    );
  });
}

export async function main(): Promise<void> {
  await runAction(schema, async ({ inputs, run, log, setOutput, writeSummary }) => {
    if (inputs.slackToken && inputs.slackWebhookUrl) {
      throw new InputError(
        'slack-webhook-url',
        'is set together with slack-token',
        'one of slack-token (with channel) or slack-webhook-url',
      );
    }
    if (inputs.slackToken && !inputs.channel) {
      throw new InputError(
        'channel',
        'is required with slack-token',
        'a channel ID such as C0123ABCD (or a #name for the first message)',
      );
    }
    if (inputs.ts && !inputs.slackToken) {
      throw new InputError(
        'ts',
        'needs slack-token: incoming webhooks cannot update a message',
        'a message timestamp together with slack-token and channel',
      );
    }
    if (inputs.event === 'custom' && !inputs.text) {
      throw new InputError('text', "is required for the 'custom' event", 'the text of the message');
    }
    let webhook: URL | undefined;
    if (inputs.slackWebhookUrl) {
      try {
        webhook = new URL(inputs.slackWebhookUrl);
      } catch {
        throw new InputError(
          'slack-webhook-url',
          'is not a URL',
          'an incoming webhook URL such as https://hooks.slack.com/services/T…/B…/…',
        );
      }
      const accepted = 'an https:// incoming webhook URL (plain http only to localhost or 127.0.0.1)';
      if (webhook.protocol !== 'https:' && webhook.protocol !== 'http:')
        throw new InputError('slack-webhook-url', `has a ${webhook.protocol} URL`, accepted);
      // The URL is the credential: over plain http anyone on the way could post as the app.
      if (webhook.protocol === 'http:' && !isLoopbackHost(webhook.hostname))
        throw new InputError(
          'slack-webhook-url',
          `has a plain http URL to ${webhook.hostname}, which would send the webhook in clear`,
          accepted,
        );
    }
    if (inputs.deploymentId && !inputs.githubToken) {
      throw new InputError(
        'github-token',
        'is required with deployment-id',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a workflow expression, shown to the user as is
        'a token with deployments: write, usually ${{ github.token }}',
      );
    }

    if ((inputs.provenance || inputs.commitsSince) && !inputs.githubToken) {
      throw new InputError(
        inputs.provenance ? 'provenance' : 'commits-since',
        'needs github-token to read the GitHub deployments',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a workflow expression, shown to the user as is
        'a token with deployments: read and contents: read, usually ${{ github.token }}',
      );
    }
    if (inputs.provenance && !/@sha256:[0-9a-f]{64}$/.test(inputs.version ?? '')) {
      throw new InputError(
        'version',
        'must be an image reference by digest with provenance: a tag can point at another image than the one that ran',
        'an image reference such as ghcr.io/acme/shop@sha256:<64 hex digits>',
      );
    }
    if (inputs.commitsSince && !/^[0-9a-f]{40}$/.test(run.sha)) {
      throw new InputError(
        'commits-since',
        "needs the run's commit (GITHUB_SHA) to compare with, and it is not a commit SHA",
        'a run of a push or a workflow_dispatch, where GITHUB_SHA is the commit',
      );
    }

    const environment = inputs.environment;
    const event: NotifyEvent = {
      event: inputs.event,
      app: inputs.app || run.repo || 'app',
      ...(environment ? { environment } : {}),
      ...(inputs.environmentUrl ? { environmentUrl: inputs.environmentUrl } : {}),
      ...(inputs.version ? { version: inputs.version } : {}),
      ...(inputs.text ? { text: inputs.text } : {}),
      stages: resolveStages(parseStages(inputs.stages), environment, inputs.event),
      mentions: parseMentions(inputs.mention),
      ...(run.actor ? { actor: run.actor } : {}),
      ...(run.branch ? { branch: run.branch } : {}),
      ...(run.sha ? { sha: run.sha } : {}),
      ...(run.commitUrl ? { commitUrl: run.commitUrl } : {}),
      ...(run.commitTitle ? { commitTitle: run.commitTitle } : {}),
      ...(run.runUrl ? { runUrl: run.runUrl, runLabel: `${run.workflow || 'run'} #${run.runId}` } : {}),
      at: Date.now(),
      ...(inputs.linkUrl ? { link: { url: inputs.linkUrl, text: inputs.linkText } } : {}),
    };

    if (inputs.provenance || inputs.commitsSince) {
      const { readReleasePlan } = await import('../packages/github/release-plan.ts');
      const plan = await readReleasePlan({
        token: inputs.githubToken!,
        apiUrl: run.apiUrl,
        owner: run.owner,
        repo: run.repo,
        head: run.sha,
        version: inputs.version ?? '',
        provenance: inputs.provenance,
        commitsSince: inputs.commitsSince,
        attempts: inputs.maxAttempts,
        onRetry: (m) => log.warning(m),
      });
      event.plan = {
        ...plan,
        ...(run.repository ? { repositoryUrl: `${run.serverUrl}/${run.repository}` } : {}),
      };
      if (plan.provenance) {
        const line = provenanceLine(plan.provenance);
        setOutput('provenance', line);
        // The warning a reviewer must not miss shows in the run's annotations too.
        if (provenanceVerdict(plan.provenance) !== 'healthy') log.warning(`${line}: ${inputs.version}`);
      }
      if (plan.commits)
        setOutput(
          'commits',
          plan.commits.base && !plan.commits.problem ? String(plan.commits.total ?? 0) : '',
        );
    }

    let slack: SlackTarget | undefined;
    if (inputs.slackToken) {
      slack = {
        kind: 'api',
        token: inputs.slackToken,
        apiUrl: inputs.slackApiUrl,
        channel: inputs.channel!,
        ...(inputs.ts ? { ts: inputs.ts } : {}),
        threadReply: inputs.threadReply,
      };
    } else if (webhook) {
      slack = { kind: 'webhook', url: webhook.href };
    }

    const result = await notify({
      event,
      ...(slack ? { slack } : {}),
      ...(inputs.deploymentId
        ? {
            deploymentStatus: {
              token: inputs.githubToken!,
              apiUrl: run.apiUrl,
              owner: run.owner,
              repo: run.repo,
              deploymentId: inputs.deploymentId,
              ...(inputs.deploymentState ? { state: inputs.deploymentState } : {}),
              ...((inputs.logUrl ?? run.runUrl) ? { logUrl: inputs.logUrl ?? run.runUrl } : {}),
            },
          }
        : {}),
      attempts: inputs.maxAttempts,
      failOnError: inputs.failOnError,
      logger: log,
    });

    setOutput('ts', result.ts);
    setOutput('channel', result.channel);
    setOutput('thread-ts', result.threadTs);
    setOutput('message-url', result.messageUrl);
    if (inputs.summary) await writeSummary(result.summary);
  });
}
