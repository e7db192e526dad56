import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A small HTTP server on a free loopback port, for the local stand-ins of services we cannot reach. */
export async function listenLoopback(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}` };
}

export async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** A failure to serve instead of the real answer, for the next `times` matching requests. */
export interface PlannedFailure {
  status?: number;
  retryAfter?: number;
  /** Slack's `error` code (Web API) or body text (webhooks), GitHub's `message`. */
  error?: string;
  times?: number;
}

export class FailurePlan<K extends string = string> {
  private readonly planned = new Map<K, PlannedFailure[]>();

  add(key: K, failure: PlannedFailure): void {
    const list = this.planned.get(key) ?? [];
    for (let i = 0; i < (failure.times ?? 1); i++) list.push(failure);
    this.planned.set(key, list);
  }

  take(key: K): PlannedFailure | undefined {
    return this.planned.get(key)?.shift();
  }

  clear(): void {
    this.planned.clear();
  }
}
