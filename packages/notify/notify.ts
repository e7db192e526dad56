import { type Clock, errorMessage, type Logger, PipelineError, systemClock } from '../core/index.ts';
import type { DeploymentState } from '../github/deployment-states.ts';
import type { NotifyEvent, NotifyEventName } from './model.ts';
import { renderSlackMessage, renderThreadReply } from './slack-message.ts';
import { renderNotifySummary } from './summary.ts';

export type SlackTarget =
  | { kind: 'api'; token: string; apiUrl: string; channel: string; ts?: string; threadReply: boolean }
  | { kind: 'webhook'; url: string };

export interface DeploymentStatusTarget {
  token: string;
  apiUrl?: string;
  owner: string;
  repo: string;
  deploymentId: number;
  state?: DeploymentState;
  logUrl?: string;
}

export interface NotifyOptions {
  event: NotifyEvent;
  slack?: SlackTarget;
  deploymentStatus?: DeploymentStatusTarget;
  attempts: number;
  /** When false, a Slack or GitHub outage is a warning and the step still succeeds. */
  failOnError: boolean;
  logger: Logger;
  clock?: Clock;
}

export interface NotifyResult {
  ts: string;
  channel: string;
  threadTs: string;
  messageUrl: string;
  summary: string;
  deploymentStatusId?: number;
  /** Delivery problems tolerated because failOnError was off. */
  warnings: string[];
}

/** The deployment status an event means, unless the caller names one. */
const EVENT_DEPLOYMENT_STATE: Record<NotifyEventName, DeploymentState | undefined> = {
  started: 'in_progress',
  succeeded: 'success',
  failed: 'failure',
  'rolled-back': 'failure',
  'awaiting-approval': 'queued',
  custom: undefined,
};

class NotifyDeliveryError extends PipelineError {}

/**
 * Renders one event everywhere it was asked to go. Every target is attempted even when an
 * earlier one failed, so a Slack outage still leaves the summary and the deployment status.
 */
export async function notify(options: NotifyOptions): Promise<NotifyResult> {
  const { event, logger } = options;
  const clock = options.clock ?? systemClock;
  const failures: string[] = [];
  const result: NotifyResult = {
    ts: '',
    channel: '',
    threadTs: '',
    messageUrl: '',
    summary: renderNotifySummary(event),
    warnings: [],
  };
  const policy = { attempts: options.attempts, clock, onRetry: (m: string) => logger.warning(m) };

  const slack = options.slack;
  // Slack's and GitHub's clients load only when a step uses them: a summary-only step starts fast.
  if (slack?.kind === 'api') {
    const { SlackWebApi } = await import('./slack.ts');
    const api = new SlackWebApi(slack.token, slack.apiUrl, policy);
    const message = renderSlackMessage(event);
    try {
      const posted = slack.ts
        ? await api.update(slack.channel, slack.ts, message)
        : await api.post(slack.channel, message);
      result.ts = posted.ts;
      result.channel = posted.channel;
      logger.info(`Slack message ${slack.ts ? 'updated' : 'posted'} in ${posted.channel} (ts ${posted.ts})`);
      if (slack.ts && slack.threadReply) {
        const reply = await api.post(
          posted.channel,
          { text: renderThreadReply(event), blocks: [] },
          posted.ts,
        );
        result.threadTs = reply.ts;
        logger.info(`Replied in the thread (ts ${reply.ts})`);
      }
      try {
        result.messageUrl = await api.permalink(posted.channel, posted.ts);
      } catch (error) {
        logger.warning(`Could not get the message's link: ${errorMessage(error)}`);
      }
    } catch (error) {
      failures.push(errorMessage(error));
    }
  } else if (slack?.kind === 'webhook') {
    try {
      const { SlackWebhook } = await import('./slack.ts');
      await new SlackWebhook(slack.url, policy).post(renderSlackMessage(event));
      logger.info('Slack message posted through the incoming webhook');
    } catch (error) {
      failures.push(errorMessage(error));
    }
  }

  const target = options.deploymentStatus;
  if (target) {
    const state = target.state ?? EVENT_DEPLOYMENT_STATE[event.event];
    if (!state) {
      logger.info(`No deployment status for a '${event.event}' event; set deployment-state to send one.`);
    } else {
      try {
        const [{ createOctokit }, { createDeploymentStatus }] = await Promise.all([
          import('../github/client.ts'),
          import('../github/deployments.ts'),
        ]);
        const status = await createDeploymentStatus(
          createOctokit({ token: target.token, ...(target.apiUrl ? { apiUrl: target.apiUrl } : {}) }),
          {
            owner: target.owner,
            repo: target.repo,
            deploymentId: target.deploymentId,
            state,
            description: event.text ?? `${event.event}${event.version ? `: ${event.version}` : ''}`,
            ...(event.environment ? { environment: event.environment } : {}),
            ...(event.environmentUrl ? { environmentUrl: event.environmentUrl } : {}),
            ...(target.logUrl ? { logUrl: target.logUrl } : {}),
          },
          policy,
        );
        result.deploymentStatusId = status.id;
        logger.info(`Deployment ${target.deploymentId} is now '${state}'`);
      } catch (error) {
        failures.push(errorMessage(error));
      }
    }
  }

  if (failures.length > 0) {
    if (options.failOnError) throw new NotifyDeliveryError(failures.join('; '));
    for (const failure of failures) logger.warning(`${failure} (fail-on-error is off, so the step goes on)`);
    result.warnings = failures;
  }
  return result;
}
