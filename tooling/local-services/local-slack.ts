import type { Server } from 'node:http';
import { closeServer, FailurePlan, listenLoopback, type PlannedFailure, readBody, sendJson } from './http.ts';

/**
 * A local endpoint that answers like Slack's Web API (https://api.slack.com/web) and incoming
 * webhooks, for tests and the rehearsal. It keeps every call and every message so tests can
 * assert on exactly what was sent, and it enforces the Block Kit limits Slack enforces.
 */

export interface SlackCall {
  method: string;
  token: string | undefined;
  args: Record<string, unknown>;
  contentType: string;
}

export interface StoredMessage {
  channel: string;
  ts: string;
  threadTs?: string;
  text: string;
  blocks: unknown[];
  /** Earlier versions, oldest first, each time chat.update replaced the message. */
  edits: { text: string; blocks: unknown[] }[];
}

export interface WebhookPost {
  path: string;
  body: Record<string, unknown>;
}

export interface LocalSlackOptions {
  tokens?: string[];
  /** Channel names (without #) to IDs. */
  channels?: Record<string, string>;
  /** Paths of incoming webhooks that exist, like /services/T0/B0/secret. */
  webhooks?: string[];
  /** Called with each message as it arrives (the rehearsal prints them). */
  onMessage?: (message: StoredMessage, kind: 'post' | 'update' | 'webhook') => void;
}

const BLOCK_LIMIT = 50;

function textOf(obj: unknown): string | undefined {
  const t = (obj as { text?: unknown })?.text;
  return typeof t === 'string' ? t : undefined;
}

/** The checks Slack applies before accepting blocks (invalid_blocks otherwise). */
export function validateBlocks(blocks: unknown): string[] {
  if (!Array.isArray(blocks)) return ['blocks must be an array'];
  const errors: string[] = [];
  if (blocks.length > BLOCK_LIMIT)
    errors.push(`no more than ${BLOCK_LIMIT} items allowed [json-pointer:/blocks]`);
  blocks.forEach((block, i) => {
    const b = block as Record<string, unknown>;
    const where = `[json-pointer:/blocks/${i}]`;
    const checkText = (obj: unknown, max: number, path: string) => {
      const text = textOf(obj);
      const type = (obj as { type?: unknown })?.type;
      if (type !== 'plain_text' && type !== 'mrkdwn') errors.push(`must be a text object ${where}${path}`);
      else if (!text) errors.push(`must be more than 0 characters ${where}${path}/text`);
      else if (Array.from(text).length > max)
        errors.push(`must be less than ${max + 1} characters ${where}${path}/text`);
    };
    switch (b.type) {
      case 'header':
        checkText(b.text, 150, '/text');
        if ((b.text as { type?: string })?.type !== 'plain_text')
          errors.push(`header text must be plain_text ${where}`);
        break;
      case 'section':
        if (!b.text && !b.fields) errors.push(`must provide text or fields ${where}`);
        if (b.text) checkText(b.text, 3000, '/text');
        if (b.fields) {
          const fields = b.fields as unknown[];
          if (fields.length > 10) errors.push(`no more than 10 items allowed ${where}/fields`);
          for (const [j, f] of fields.entries()) checkText(f, 2000, `/fields/${j}`);
        }
        break;
      case 'context': {
        const elements = (b.elements as unknown[]) ?? [];
        if (elements.length === 0 || elements.length > 10)
          errors.push(`must have 1 to 10 elements ${where}/elements`);
        for (const [j, el] of elements.entries()) checkText(el, 3000, `/elements/${j}`);
        break;
      }
      case 'actions': {
        const elements = (b.elements as Record<string, unknown>[]) ?? [];
        if (elements.length === 0 || elements.length > 25)
          errors.push(`must have 1 to 25 elements ${where}/elements`);
        elements.forEach((el, j) => {
          checkText(el.text, 75, `/elements/${j}/text`);
          if (typeof el.url === 'string' && el.url.length > 3000)
            errors.push(`url too long ${where}/elements/${j}`);
        });
        break;
      }
      case 'divider':
        break;
      default:
        errors.push(`unknown block type ${JSON.stringify(b.type)} ${where}`);
    }
  });
  return errors;
}

export class LocalSlack {
  readonly url: string;
  readonly calls: SlackCall[] = [];
  readonly messages: StoredMessage[] = [];
  readonly webhookPosts: WebhookPost[] = [];
  private readonly failures = new FailurePlan();
  private readonly server: Server;
  private readonly tokens: Set<string>;
  private readonly channels: Map<string, string>;
  private readonly webhooks: Set<string>;
  private readonly onMessage: LocalSlackOptions['onMessage'];
  private counter = 0;

  private constructor(server: Server, url: string, options: LocalSlackOptions) {
    this.server = server;
    this.url = url;
    this.tokens = new Set(options.tokens ?? ['xoxb-local-test-token']);
    this.channels = new Map(
      Object.entries(options.channels ?? { deploys: 'C0DEPLOYS', releases: 'C0RELEASE' }),
    );
    this.webhooks = new Set(options.webhooks ?? ['/services/T0LOCAL/B0LOCAL/webhooksecret']);
    this.onMessage = options.onMessage;
  }

  static async start(options: LocalSlackOptions = {}): Promise<LocalSlack> {
    let instance: LocalSlack | undefined;
    const { server, url } = await listenLoopback((req, res) => {
      instance!
        .handle(req, res)
        .catch((error) => sendJson(res, 500, { ok: false, error: 'internal_error', detail: String(error) }));
    });
    instance = new LocalSlack(server, url, options);
    return instance;
  }

  /** Base URL for `slackApiUrl` / the notify action's `slack-api-url`. */
  get apiUrl(): string {
    return `${this.url}/api/`;
  }

  get webhookUrl(): string {
    return `${this.url}${[...this.webhooks][0]}`;
  }

  /** Fail the next call(s) of a Web API method (`chat.postMessage`) or of `webhook`. */
  failNext(method: string, failure: PlannedFailure): void {
    this.failures.add(method, failure);
  }

  callsOf(method: string): SlackCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  async close(): Promise<void> {
    await closeServer(this.server);
  }

  private nextTs(): string {
    this.counter++;
    return `${1_700_000_000 + this.counter}.${String(this.counter * 100).padStart(6, '0')}`;
  }

  private async handle(
    req: import('node:http').IncomingMessage,
    res: import('node:http').ServerResponse,
  ): Promise<void> {
    const path = new URL(req.url ?? '/', this.url).pathname;
    const body = await readBody(req);
    if (path.startsWith('/services/')) return this.handleWebhook(path, body, res);
    const method = path.replace(/^\/api\//, '');
    if (req.method !== 'POST' && req.method !== 'GET')
      return sendJson(res, 405, { ok: false, error: 'method_not_allowed' });

    const contentType = String(req.headers['content-type'] ?? '');
    let args: Record<string, unknown> = {};
    if (contentType.includes('application/json')) {
      args = body ? (JSON.parse(body) as Record<string, unknown>) : {};
    } else {
      args = Object.fromEntries(new URLSearchParams(body));
    }
    for (const key of ['blocks', 'attachments', 'metadata']) {
      if (typeof args[key] === 'string') {
        try {
          args[key] = JSON.parse(args[key] as string);
        } catch {
          return sendJson(res, 200, { ok: false, error: `invalid_${key}` });
        }
      }
    }
    const auth = String(req.headers.authorization ?? '');
    const token = auth.startsWith('Bearer ')
      ? auth.slice(7)
      : typeof args.token === 'string'
        ? args.token
        : undefined;
    this.calls.push({ method, token, args, contentType });

    const failure = this.failures.take(method);
    if (failure) return this.sendFailure(res, failure);
    if (!token) return sendJson(res, 200, { ok: false, error: 'not_authed' });
    if (!this.tokens.has(token)) return sendJson(res, 200, { ok: false, error: 'invalid_auth' });

    switch (method) {
      case 'auth.test':
        return sendJson(res, 200, {
          ok: true,
          url: 'https://acme.slack.com/',
          team: 'Acme',
          user: 'pipeline',
          team_id: 'T0LOCAL',
          user_id: 'U0BOT',
          bot_id: 'B0BOT',
        });
      case 'chat.postMessage':
        return this.postMessage(args, res);
      case 'chat.update':
        return this.updateMessage(args, res);
      case 'chat.getPermalink':
        return this.permalink(args, res);
      default:
        return sendJson(res, 200, { ok: false, error: 'unknown_method' });
    }
  }

  private sendFailure(res: import('node:http').ServerResponse, failure: PlannedFailure): void {
    const status = failure.status ?? 200;
    const headers: Record<string, string> =
      failure.retryAfter !== undefined ? { 'retry-after': String(failure.retryAfter) } : {};
    const error =
      failure.error ?? (status === 429 ? 'ratelimited' : status >= 500 ? 'internal_error' : 'fatal_error');
    sendJson(res, status, { ok: false, error }, headers);
  }

  private resolveChannel(raw: unknown): string | undefined {
    if (typeof raw !== 'string' || !raw) return undefined;
    const name = raw.replace(/^#/, '');
    if (this.channels.has(name)) return this.channels.get(name);
    return [...this.channels.values()].includes(raw) ? raw : undefined;
  }

  private postMessage(args: Record<string, unknown>, res: import('node:http').ServerResponse): void {
    const channel = this.resolveChannel(args.channel);
    if (!args.channel) return sendJson(res, 200, { ok: false, error: 'channel_not_found' });
    if (!channel) return sendJson(res, 200, { ok: false, error: 'channel_not_found' });
    const text = typeof args.text === 'string' ? args.text : '';
    const blocks = (args.blocks as unknown[]) ?? [];
    if (!text && blocks.length === 0) return sendJson(res, 200, { ok: false, error: 'no_text' });
    if (args.blocks !== undefined) {
      const errors = validateBlocks(args.blocks);
      if (errors.length > 0) return sendJson(res, 200, { ok: false, error: 'invalid_blocks', errors });
    }
    const threadTs = typeof args.thread_ts === 'string' && args.thread_ts ? args.thread_ts : undefined;
    if (threadTs && !this.messages.some((m) => m.channel === channel && m.ts === threadTs)) {
      return sendJson(res, 200, { ok: false, error: 'thread_not_found' });
    }
    const message: StoredMessage = {
      channel,
      ts: this.nextTs(),
      text,
      blocks,
      edits: [],
      ...(threadTs ? { threadTs } : {}),
    };
    this.messages.push(message);
    this.onMessage?.(message, 'post');
    sendJson(res, 200, {
      ok: true,
      channel,
      ts: message.ts,
      message: { type: 'message', text, blocks, ts: message.ts, bot_id: 'B0BOT' },
    });
  }

  private updateMessage(args: Record<string, unknown>, res: import('node:http').ServerResponse): void {
    // chat.update takes a channel ID only, as Slack's does.
    const channel =
      typeof args.channel === 'string' && [...this.channels.values()].includes(args.channel)
        ? args.channel
        : undefined;
    if (!channel) return sendJson(res, 200, { ok: false, error: 'channel_not_found' });
    const message = this.messages.find((m) => m.channel === channel && m.ts === args.ts);
    if (!message) return sendJson(res, 200, { ok: false, error: 'message_not_found' });
    if (args.blocks !== undefined) {
      const errors = validateBlocks(args.blocks);
      if (errors.length > 0) return sendJson(res, 200, { ok: false, error: 'invalid_blocks', errors });
    }
    message.edits.push({ text: message.text, blocks: message.blocks });
    message.text = typeof args.text === 'string' ? args.text : message.text;
    message.blocks = (args.blocks as unknown[]) ?? message.blocks;
    this.onMessage?.(message, 'update');
    sendJson(res, 200, {
      ok: true,
      channel,
      ts: message.ts,
      text: message.text,
      message: { text: message.text, blocks: message.blocks },
    });
  }

  private permalink(args: Record<string, unknown>, res: import('node:http').ServerResponse): void {
    const message = this.messages.find((m) => m.channel === args.channel && m.ts === args.message_ts);
    if (!message) return sendJson(res, 200, { ok: false, error: 'message_not_found' });
    sendJson(res, 200, {
      ok: true,
      channel: message.channel,
      permalink: `https://acme.slack.com/archives/${message.channel}/p${message.ts.replace('.', '')}`,
    });
  }

  private handleWebhook(path: string, body: string, res: import('node:http').ServerResponse): void {
    const reply = (status: number, text: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'text/html', ...headers });
      res.end(text);
    };
    const failure = this.failures.take('webhook');
    if (failure) {
      const headers: Record<string, string> =
        failure.retryAfter !== undefined ? { 'retry-after': String(failure.retryAfter) } : {};
      return reply(failure.status ?? 500, failure.error ?? 'internal_error', headers);
    }
    if (!this.webhooks.has(path)) return reply(404, 'no_service');
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(body) as Record<string, unknown>;
    } catch {
      return reply(400, 'invalid_payload');
    }
    this.webhookPosts.push({ path, body: parsed });
    if (!parsed.text && !parsed.blocks) return reply(400, 'no_text');
    if (parsed.blocks !== undefined && validateBlocks(parsed.blocks).length > 0)
      return reply(400, 'invalid_blocks');
    const message: StoredMessage = {
      channel: 'webhook',
      ts: this.nextTs(),
      text: String(parsed.text ?? ''),
      blocks: (parsed.blocks as unknown[]) ?? [],
      edits: [],
    };
    this.onMessage?.(message, 'webhook');
    reply(200, 'ok');
  }
}
