import { WebClient } from '@slack/web-api';
import { IncomingWebhook } from '@slack/webhook';
import {
  type Clock,
  errorMessage,
  isTransientNetworkError,
  PipelineError,
  parseRetryAfter,
  type RetryDecision,
  retry,
} from '../core/index.ts';
import type { SlackMessage } from './slack-message.ts';

/** A Slack call that failed for good: `slackError` is Slack's own code (`channel_not_found`, `ratelimited`, ...). */
class SlackError extends PipelineError {
  readonly slackError: string;
  constructor(operation: string, slackError: string, detail?: string) {
    super(`Slack ${operation} failed: ${slackError}${detail ? ` (${detail})` : ''}`);
    this.slackError = slackError;
  }
}

export interface PostedMessage {
  channel: string;
  ts: string;
}

export interface SlackRetryPolicy {
  attempts: number;
  clock?: Clock;
  onRetry?: (message: string) => void;
}

/**
 * How a failed Slack call should be treated. Throttling waits what Slack asks (Retry-After);
 * 5xx and network failures back off; Slack's own `ok: false` answers are final.
 */
function classifySlackError(error: unknown): RetryDecision {
  const e = error as {
    code?: string;
    retryAfter?: number;
    statusCode?: number;
    headers?: Record<string, string>;
  };
  if (e?.code === 'slack_webapi_rate_limited_error') {
    return { retry: true, reason: 'rate limited by Slack', afterMs: (e.retryAfter ?? 1) * 1000 };
  }
  if (e?.code === 'slack_webapi_http_error' || e?.code === 'slack_webhook_http_error' || e?.statusCode) {
    const status = e.statusCode ?? 0;
    if (status === 429) {
      const afterMs = parseRetryAfter(
        (error as { retryAfterHeader?: string }).retryAfterHeader ?? e.headers?.['retry-after'],
      );
      return { retry: true, reason: 'rate limited by Slack', afterMs: afterMs ?? 1000 };
    }
    if (status >= 500) return { retry: true, reason: `Slack answered HTTP ${status}` };
    return { retry: false };
  }
  if (
    e?.code === 'slack_webapi_request_error' ||
    e?.code === 'slack_webhook_request_error' ||
    isTransientNetworkError(error)
  ) {
    return { retry: true, reason: errorMessage(error) };
  }
  return { retry: false };
}

function finalError(operation: string, error: unknown): SlackError {
  let e = error as {
    code?: string;
    data?: { error?: string };
    statusCode?: number;
    body?: unknown;
    cause?: unknown;
  };
  if ((e as Error).name === 'RetriesExhaustedError' && e.cause) e = e.cause as typeof e;
  if (e?.code === 'slack_webapi_platform_error')
    return new SlackError(operation, e.data?.error ?? 'unknown_error');
  if (e?.code === 'slack_webapi_rate_limited_error')
    return new SlackError(operation, 'ratelimited', 'retries exhausted');
  if (e?.statusCode) {
    const body = typeof e.body === 'string' ? e.body.slice(0, 100) : '';
    return new SlackError(operation, body || `http_${e.statusCode}`, `HTTP ${e.statusCode}`);
  }
  return new SlackError(operation, 'request_failed', errorMessage(error));
}

async function withRetry<T>(operation: string, policy: SlackRetryPolicy, call: () => Promise<T>): Promise<T> {
  try {
    return await retry(call, {
      attempts: policy.attempts,
      classify: classifySlackError,
      clock: policy.clock,
      baseDelayMs: 1000,
      maxDelayMs: 20_000,
      onRetry: ({ attempt, delayMs, reason }) =>
        policy.onRetry?.(
          `Slack ${operation}: ${reason}; attempt ${attempt + 1} of ${policy.attempts} in ${delayMs} ms`,
        ),
    });
  } catch (error) {
    throw finalError(operation, error);
  }
}

/** The Web API (bot token): can post, update in place, reply in a thread and link to a message. */
export class SlackWebApi {
  private readonly client: WebClient;
  private readonly policy: SlackRetryPolicy;

  constructor(token: string, apiUrl: string, policy: SlackRetryPolicy) {
    // Retries are ours (one policy for the suite, honouring Retry-After with a testable clock).
    this.client = new WebClient(token, {
      slackApiUrl: apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`,
      retryConfig: { retries: 0 },
      rejectRateLimitedCalls: true,
      timeout: 30_000,
      logger: quietLogger,
    });
    this.policy = policy;
  }

  async post(channel: string, message: SlackMessage, threadTs?: string): Promise<PostedMessage> {
    const result = await withRetry('chat.postMessage', this.policy, () =>
      this.client.chat.postMessage({
        channel,
        text: message.text,
        blocks: message.blocks as never,
        ...(threadTs ? { thread_ts: threadTs } : {}),
        unfurl_links: false,
        unfurl_media: false,
        link_names: false,
      }),
    );
    return { channel: String(result.channel), ts: String(result.ts) };
  }

  async update(channel: string, ts: string, message: SlackMessage): Promise<PostedMessage> {
    const result = await withRetry('chat.update', this.policy, () =>
      this.client.chat.update({
        channel,
        ts,
        text: message.text,
        blocks: message.blocks as never,
        link_names: false,
      }),
    );
    return { channel: String(result.channel ?? channel), ts: String(result.ts ?? ts) };
  }

  async permalink(channel: string, ts: string): Promise<string> {
    const result = await withRetry('chat.getPermalink', this.policy, () =>
      this.client.chat.getPermalink({ channel, message_ts: ts }),
    );
    return String(result.permalink ?? '');
  }
}

/** Incoming webhooks: post only; Slack gives no `ts` back, so nothing can be updated later. */
export class SlackWebhook {
  private readonly webhook: IncomingWebhook;
  private readonly policy: SlackRetryPolicy;

  constructor(url: string, policy: SlackRetryPolicy) {
    // @slack/webhook drops response headers from its errors; keep Retry-After by wrapping fetch.
    const fetchKeepingRetryAfter: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (response.status === 429) {
        const retryAfter = response.headers.get('retry-after') ?? undefined;
        const body = await response.text();
        throw Object.assign(new Error(`Slack webhook answered HTTP 429`), {
          code: 'slack_webhook_http_error',
          statusCode: 429,
          body,
          retryAfterHeader: retryAfter,
        });
      }
      return response;
    };
    this.webhook = new IncomingWebhook(url, {
      fetch: fetchKeepingRetryAfter as never,
      timeout: 30_000,
      retryConfig: { retries: 0 },
    });
    this.policy = policy;
  }

  async post(message: SlackMessage): Promise<void> {
    await withRetry('webhook', this.policy, async () => {
      try {
        await this.webhook.send({
          text: message.text,
          blocks: message.blocks as never,
          unfurl_links: false,
          unfurl_media: false,
        });
      } catch (error) {
        // The wrapper above throws through @slack/webhook, which wraps unknown errors; unwrap ours.
        const cause =
          (error as { original?: unknown; cause?: unknown }).original ?? (error as { cause?: unknown }).cause;
        if ((cause as { statusCode?: number })?.statusCode === 429) throw cause;
        throw error;
      }
    });
  }
}

const quietLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  setLevel() {},
  getLevel: () => 'error' as never,
  setName() {},
};
