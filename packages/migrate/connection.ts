import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { userInfo } from 'node:os';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { errorMessage, InputError, type Logger, PipelineError } from '../core/index.ts';
import { hasUnencodedUserinfo } from './types.ts';

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

const DATABASE_URL_FORM =
  'postgres://user:password@host:5432/database (postgresql:// also works; query parameters sslmode, ' +
  'sslrootcert, application_name, connect_timeout, options), or leave it empty to use the PG* variables';

/** Where and how to connect, resolved from a URL or the PG* variables (never printed with its password). */
export interface ConnectionTarget {
  host: string;
  port: number;
  user: string;
  database: string;
  password: string | undefined;
  sslmode: SslMode;
  /** Path of the CA bundle for verify-ca / verify-full (sslrootcert, PGSSLROOTCERT). */
  sslRootCert: string | undefined;
  connectTimeoutMs: number;
  /** Server options (`-c search_path=app`), as libpq's `options`. */
  options: string | undefined;
}

/** A connection failed before anything ran; the message names the server, never the password. */
export class DatabaseConnectionError extends PipelineError {}

function parseSslMode(value: string, input: string): SslMode {
  const mode = value.trim().toLowerCase();
  if ((SSL_MODES as readonly string[]).includes(mode)) return mode as SslMode;
  // pg's own extension; libpq calls it require.
  if (mode === 'no-verify') return 'require';
  throw new InputError(
    input,
    `has ${JSON.stringify(value)}, which is not an sslmode`,
    `one of ${SSL_MODES.join(', ')}`,
  );
}

export interface ResolveConnectionOptions {
  databaseUrl?: string | undefined;
  /** Wins over the URL's sslmode, which wins over PGSSLMODE. */
  sslmode?: SslMode | undefined;
  sslRootCert?: string | undefined;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
}

/**
 * Resolves the connection the way libpq does: a postgres:// URL, with PG* variables for whatever it
 * leaves out (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE, PGSSLROOTCERT,
 * PGCONNECT_TIMEOUT, PGOPTIONS), then libpq's defaults. Secrets are masked before anything can log them.
 */
export function resolveConnection(options: ResolveConnectionOptions): ConnectionTarget {
  const env = options.env ?? process.env;
  const raw = options.databaseUrl?.trim();
  let url: URL | undefined;
  if (raw) {
    options.logger?.mask(raw);
    // An @ in the password left as it is: the URL parser splits at the last one, so the password,
    // host and database come out as pieces (and a masked piece as short as "p" would hide every p
    // in the log). Refused before anything of it is masked.
    if (hasUnencodedUserinfo(raw))
      throw new InputError(
        'database-url',
        'has an @, / or # in its user or password: they must be percent-encoded',
        `${DATABASE_URL_FORM}, with @ written %40, / %2F, : %3A, % %25, # %23`,
      );
    try {
      url = new URL(raw);
    } catch {
      throw new InputError(
        'database-url',
        'is not a URL (a user or password holding @, /, :, %, #, ? or a space must be percent-encoded)',
        DATABASE_URL_FORM,
      );
    }
    if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')
      throw new InputError(
        'database-url',
        `has the scheme ${url.protocol.replace(':', '')}`,
        DATABASE_URL_FORM,
      );
  }
  const param = (name: string) => url?.searchParams.get(name) ?? undefined;
  const decode = (text: string, what: string) => {
    try {
      return decodeURIComponent(text);
    } catch {
      throw new InputError('database-url', `has a malformed ${what}`, DATABASE_URL_FORM);
    }
  };

  const password = url?.password ? decode(url.password, 'password') : env.PGPASSWORD || undefined;
  if (password) options.logger?.mask(password);

  // An IPv6 literal keeps its brackets in URL.hostname ([::1]); the socket wants the address alone.
  const hostname = url?.hostname.replace(/^\[(.*)\]$/, '$1');
  const host = (hostname ? decode(hostname, 'host') : param('host')) || env.PGHOST || 'localhost';
  const portText = url?.port || param('port') || env.PGPORT || '5432';
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new InputError(
      raw ? 'database-url' : 'PGPORT',
      `has the port ${JSON.stringify(portText)}`,
      'a port from 1 to 65535',
    );
  const user =
    (url?.username ? decode(url.username, 'user') : param('user')) || env.PGUSER || userInfo().username;
  const path = url?.pathname.replace(/^\//, '');
  const database = (path ? decode(path, 'database name') : param('dbname')) || env.PGDATABASE || user;

  const sslText = param('sslmode') ?? env.PGSSLMODE;
  const sslmode =
    options.sslmode ??
    (sslText
      ? parseSslMode(sslText, sslText === env.PGSSLMODE && !param('sslmode') ? 'PGSSLMODE' : 'database-url')
      : 'prefer');
  const timeoutText = param('connect_timeout') ?? env.PGCONNECT_TIMEOUT;
  const timeoutSeconds = timeoutText ? Number(timeoutText) : 10;
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds < 0)
    throw new InputError(
      'database-url',
      `has connect_timeout ${JSON.stringify(timeoutText)}`,
      'seconds, a whole number',
    );

  return {
    host,
    port,
    user,
    database,
    password,
    sslmode,
    sslRootCert: options.sslRootCert ?? param('sslrootcert') ?? (env.PGSSLROOTCERT || undefined),
    // libpq treats 0 as "wait forever"; we keep a deadline anyway.
    connectTimeoutMs: (timeoutSeconds || 10) * 1000,
    options: param('options') ?? (env.PGOPTIONS || undefined),
  };
}

/** user@host:port/database, for messages. */
export function describeTarget(target: ConnectionTarget): string {
  return `${target.user}@${target.host}:${target.port}/${target.database}`;
}

/**
 * libpq's sslmode semantics on top of Node's TLS: `require` encrypts without checking the
 * certificate, `verify-ca` checks the chain but not the host name, `verify-full` checks both.
 * `prefer` and `allow` try TLS without verification and fall back to plain when the server has no
 * TLS (see connectClient); `disable` never uses TLS.
 */
export function tlsOptions(target: ConnectionTarget): false | ConnectionOptions {
  if (target.sslmode === 'disable') return false;
  const ca = target.sslRootCert ? readRootCert(target.sslRootCert) : undefined;
  switch (target.sslmode) {
    case 'verify-full':
      // SNI takes host names only; an IP address is still checked against the certificate.
      return {
        rejectUnauthorized: true,
        ...(ca ? { ca } : {}),
        ...(isIP(target.host) ? {} : { servername: target.host }),
      };
    case 'verify-ca':
      return { rejectUnauthorized: true, ...(ca ? { ca } : {}), checkServerIdentity: () => undefined };
    default:
      return { rejectUnauthorized: false };
  }
}

function readRootCert(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new InputError(
      'sslrootcert',
      `names ${JSON.stringify(path)}, which cannot be read (${errorMessage(error)})`,
      'a PEM file of CA certificates',
    );
  }
}

function clientConfig(
  target: ConnectionTarget,
  ssl: false | ConnectionOptions,
  applicationName: string,
): pg.ClientConfig {
  return {
    host: target.host,
    port: target.port,
    user: target.user,
    database: target.database,
    ...(target.password !== undefined ? { password: target.password } : {}),
    ssl,
    application_name: applicationName,
    connectionTimeoutMillis: target.connectTimeoutMs,
    ...(target.options ? { options: target.options } : {}),
  };
}

/**
 * Opens a session. Every client gets an 'error' listener: a session killed while idle must become
 * a reported failure, not an uncaught exception. `onError` hears about such deaths.
 */
export async function connectClient(
  target: ConnectionTarget,
  applicationName: string,
  onError: (error: Error) => void = () => {},
): Promise<pg.Client> {
  const attempt = async (ssl: false | ConnectionOptions) => {
    const client = new pg.Client(clientConfig(target, ssl, applicationName));
    client.on('error', onError);
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    return client;
  };
  const ssl = tlsOptions(target);
  try {
    return await attempt(ssl);
  } catch (error) {
    const noTls = /does not support SSL/i.test(errorMessage(error));
    if (noTls && (target.sslmode === 'prefer' || target.sslmode === 'allow')) {
      try {
        return await attempt(false);
      } catch (plainError) {
        throw connectionError(target, plainError);
      }
    }
    throw connectionError(target, error);
  }
}

function connectionError(target: ConnectionTarget, error: unknown): DatabaseConnectionError {
  let detail = errorMessage(error) || (error as { code?: string }).code || 'unknown error';
  // pg's words when the server asks for a password and there is none.
  if (/client password must be a string/.test(detail) && target.password === undefined)
    detail = 'the server asks for a password and none was given (none in database-url, PGPASSWORD empty)';
  if (target.password) detail = detail.split(target.password).join('***');
  return new DatabaseConnectionError(
    `Could not connect to PostgreSQL at ${describeTarget(target)} (sslmode=${target.sslmode}): ${detail}. Nothing was changed.`,
    { cause: error },
  );
}

/** The environment that makes pg_dump / pg_restore connect to the same place, password included. */
export function libpqEnv(target: ConnectionTarget, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...base,
    PGHOST: target.host,
    PGPORT: String(target.port),
    PGUSER: target.user,
    PGDATABASE: target.database,
    PGSSLMODE: target.sslmode,
    PGCONNECT_TIMEOUT: String(Math.ceil(target.connectTimeoutMs / 1000)),
  };
  if (target.password !== undefined) env.PGPASSWORD = target.password;
  else delete env.PGPASSWORD;
  if (target.sslRootCert) env.PGSSLROOTCERT = target.sslRootCert;
  if (target.options) env.PGOPTIONS = target.options;
  return env;
}
