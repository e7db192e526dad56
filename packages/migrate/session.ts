import pg from 'pg';
import { errorMessage, type Logger } from '../core/index.ts';
import { type ConnectionTarget, connectClient } from './connection.ts';

export const APPLICATION_NAME = 'pipeline-migrate';
/** PostgreSQL keeps 63 bytes of application_name, ASCII only. */
const APPLICATION_NAME_BYTES = 63;

/** `pipeline-migrate <run label>`, cut to what PostgreSQL keeps, so another run can name this one. */
export function applicationNameFor(runLabel: string | undefined): string {
  const label = (runLabel ?? '').replace(/[^\x20-\x7e]/g, '?').trim();
  return label ? `${APPLICATION_NAME} ${label}`.slice(0, APPLICATION_NAME_BYTES) : APPLICATION_NAME;
}

/** A simple-query message failed; `completed` counts the statements of it that had completed. */
export class ScriptError extends Error {
  readonly completed: number;
  constructor(cause: unknown, completed: number) {
    super(errorMessage(cause), { cause });
    this.completed = completed;
  }
}

/** pg's Query, counting CommandComplete replies so a failure without a position still names its statement. */
class CountingQuery extends pg.Query {
  completed = 0;
  handleCommandComplete(msg: unknown, connection: unknown): void {
    this.completed++;
    (
      pg.Query.prototype as unknown as { handleCommandComplete(m: unknown, c: unknown): void }
    ).handleCommandComplete.call(this, msg, connection);
  }
}

export function isConnectionLoss(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (code === '57P01' || code === '57P02' || code === '57P03' || code === 'ECONNRESET' || code === 'EPIPE')
    return true;
  return /connection terminated|connection (?:is )?(?:closed|ended)|client has encountered a connection error|not queryable/i.test(
    errorMessage(error),
  );
}

/** Who holds a lock we wait for, from pg_stat_activity. */
export interface Holder {
  pid: number;
  applicationName: string;
  user: string;
  clientAddr: string | null;
  backendStart: Date;
  state: string | null;
  query: string | null;
}

const HOLDER_COLUMNS = `a.pid, a.application_name, a.usename, a.client_addr::text AS client_addr,
  a.backend_start, a.state, a.query`;

function toHolder(r: Record<string, unknown>): Holder {
  return {
    pid: r.pid as number,
    applicationName: (r.application_name as string) ?? '',
    user: r.usename as string,
    clientAddr: (r.client_addr as string | null) ?? null,
    backendStart: r.backend_start as Date,
    state: (r.state as string | null) ?? null,
    query: (r.query as string | null) ?? null,
  };
}

/** "run acme/shop#42.1 migrate (PostgreSQL backend 123, user app from 10.0.0.1, connected …)". */
export function describeHolder(h: Holder, withQuery: boolean): string {
  const who = h.applicationName.startsWith(`${APPLICATION_NAME} `)
    ? `run ${h.applicationName.slice(APPLICATION_NAME.length + 1)}`
    : h.applicationName
      ? `"${h.applicationName}"`
      : 'a session with no application name';
  const query = (h.query ?? '').replace(/\s+/g, ' ').trim();
  const doing =
    withQuery && query
      ? `, ${h.state ?? 'state unknown'}: ${query.length > 200 ? `${query.slice(0, 197)}...` : query}`
      : '';
  return `${who} (PostgreSQL backend ${h.pid}, user ${h.user}${h.clientAddr ? ` from ${h.clientAddr}` : ''}, connected ${h.backendStart.toISOString()}${doing})`;
}

/**
 * The one session of a run: migrations, history and the advisory lock all live on it, so its death
 * ends the open transaction and releases the lock together, and no second connection is needed.
 * A side session is opened only when a statement waits long enough to ask who blocks it.
 */
export class Session {
  readonly target: ConnectionTarget;
  readonly applicationName: string;
  private readonly log: Logger;
  client: pg.Client | undefined;
  lost: Error | undefined;
  private closing = false;
  private side: pg.Client | undefined;
  /** The sessions that blocked the last slow statement, as seen while it waited. */
  blockers: Holder[] = [];

  constructor(target: ConnectionTarget, applicationName: string, log: Logger) {
    this.target = target;
    this.applicationName = applicationName;
    this.log = log;
  }

  async connect(): Promise<pg.Client> {
    this.lost = undefined;
    const client = await connectClient(this.target, this.applicationName, (error) => {
      this.lost ??= error;
    });
    client.on('end', () => {
      if (!this.closing && this.client === client) this.lost ??= new Error('the session ended');
    });
    this.client = client;
    return client;
  }

  get pid(): number | undefined {
    return (this.client as unknown as { processID?: number } | undefined)?.processID;
  }

  query<R extends pg.QueryResultRow = Record<string, unknown>>(
    text: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.client!.query<R>(text, params);
  }

  escape(value: string): string {
    return this.client!.escapeLiteral(value);
  }

  /**
   * Sends `text` as one simple-query message (one round trip, however many statements). On failure
   * throws ScriptError with the number of statements that had completed.
   */
  async script(text: string, watch?: { lockTimeoutMs: number | undefined }): Promise<pg.QueryResult[]> {
    const stop = watch ? this.watchBlockers(watch.lockTimeoutMs) : undefined;
    try {
      return await new Promise<pg.QueryResult[]>((ok, fail) => {
        const q: CountingQuery = new CountingQuery(
          text,
          undefined,
          (error: Error | undefined, result?: pg.QueryResult | pg.QueryResult[]) =>
            error
              ? fail(new ScriptError(error, q.completed))
              : ok(Array.isArray(result) ? result : result ? [result] : []),
        );
        this.client!.query(q);
      });
    } finally {
      stop?.();
    }
  }

  /** One statement, watched for blockers like a script. */
  async statement(text: string, watch: { lockTimeoutMs: number | undefined }): Promise<void> {
    const stop = this.watchBlockers(watch.lockTimeoutMs);
    try {
      await this.client!.query(text);
    } finally {
      stop();
    }
  }

  /**
   * While a statement runs longer than a quarter of lock_timeout (or 2 s), asks a side session
   * which sessions block it (pg_blocking_pids) and what they run, so a lock timeout can name them;
   * once seen, a long wait is also logged.
   */
  private watchBlockers(lockTimeoutMs: number | undefined): () => void {
    this.blockers = [];
    const pid = this.pid;
    if (pid === undefined) return () => {};
    const first = Math.max(20, Math.min(2000, lockTimeoutMs !== undefined ? lockTimeoutMs / 4 : 2000));
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    let warned = false;
    const look = async () => {
      try {
        this.side ??= await connectClient(this.target, `${APPLICATION_NAME} watcher`, () => {});
        if (stopped) return;
        const { rows } = await this.side.query(
          `SELECT ${HOLDER_COLUMNS} FROM pg_stat_activity a WHERE a.pid = ANY (pg_blocking_pids($1)) ORDER BY a.pid`,
          [pid],
        );
        if (rows.length > 0) {
          this.blockers = rows.map(toHolder);
          if (!warned) {
            warned = true;
            this.log.warning(
              `A migration statement is waiting for a lock held by ${this.blockers.map((b) => describeHolder(b, true)).join('; ')}`,
            );
          }
        }
      } catch {
        // Only a better message is lost; the statement itself goes on.
      }
      if (!stopped) timer = setTimeout(look, Math.max(first, 250)).unref();
    };
    timer = setTimeout(look, first).unref();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }

  /**
   * Runs `body` (one query on this session); when `signal` aborts meanwhile, a side session asks the
   * server to cancel that query (pg_cancel_backend), so a wait ends at once instead of at its timeout.
   */
  async cancellable<T>(signal: AbortSignal | undefined, body: () => Promise<T>): Promise<T> {
    const pid = this.pid;
    if (!signal || pid === undefined) return body();
    if (signal.aborted) throw signal.reason ?? new Error('cancelled');
    let settled = false;
    const cancel = async () => {
      // Again every quarter second until the query ends: a cancel that reaches the server just
      // before the query starts cancels nothing.
      for (let tries = 0; !settled && tries < 40; tries++) {
        try {
          this.side ??= await connectClient(this.target, `${APPLICATION_NAME} watcher`, () => {});
          await this.side.query('SELECT pg_cancel_backend($1)', [pid]);
        } catch {
          // The wait then ends at its own timeout, as it would have.
        }
        await new Promise((resolve) => setTimeout(resolve, 250).unref());
      }
    };
    const onAbort = () => void cancel();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await body();
    } finally {
      settled = true;
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** The sessions holding the session-level advisory lock `key` in this database (one at most). */
  private async advisoryHolders(key: string): Promise<Holder[]> {
    const k = BigInt.asUintN(64, BigInt(key));
    const { rows } = await this.query(
      `SELECT ${HOLDER_COLUMNS}
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid AND l.objsubid = 1`,
      [(k >> 32n).toString(), (k & 0xffffffffn).toString()],
    );
    return rows.map(toHolder);
  }

  /** The session holding a session-level advisory lock, asked on this session (undefined if unknown). */
  async advisoryHolder(key: string): Promise<Holder | undefined> {
    try {
      return (await this.advisoryHolders(key))[0];
    } catch {
      return undefined;
    }
  }

  /** Whether this session holds the advisory lock `key`; a failed query is thrown, not guessed. */
  async holdsAdvisoryLock(key: string): Promise<boolean> {
    return (await this.advisoryHolders(key)).some((h) => h.pid === this.pid);
  }

  async close(): Promise<void> {
    this.closing = true;
    const end = async (client: pg.Client | undefined) => {
      if (!client) return;
      await Promise.race([
        client.end().catch(() => {}),
        new Promise((resolve) => setTimeout(resolve, 5000).unref()),
      ]);
    };
    await Promise.all([end(this.client), end(this.side)]); // ending the session releases the advisory lock
  }
}
