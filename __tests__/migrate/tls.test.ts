import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { connectClient, resolveConnection, type SslMode } from '../../packages/migrate/connection.ts';
import { DatabaseConnectionError } from '../../packages/migrate/index.ts';
import {
  type PostgresServer,
  postgresAvailable,
  startPostgres,
} from '../../tooling/local-services/postgres.ts';

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    if (process.env.CI === 'true')
      throw new Error('openssl is needed for the TLS tests: apt-get install openssl');
    console.warn('Skipping the TLS tests: openssl not found');
    return false;
  }
}

const available = postgresAvailable() && hasOpenssl();
const suite = available ? describe : describe.skip;
const openssl = (args: string[], cwd: string) => promisify(execFile)('openssl', args, { cwd });

let server: PostgresServer;
let plain: PostgresServer;
let dir: string;
let caFile: string;

/** A CA and a server certificate for the name `localhost` only (not 127.0.0.1). */
async function makeCertificates(): Promise<{ certPem: string; keyPem: string }> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(
    [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      '/CN=pipeline test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  await openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir);
  await writeFile(
    join(dir, 'ext.cnf'),
    'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
  );
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.crt',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
    ],
    dir,
  );
  return {
    certPem: await readFile(join(dir, 'server.crt'), 'utf8'),
    keyPem: await readFile(join(dir, 'server.key'), 'utf8'),
  };
}

beforeAll(async () => {
  if (!available) return;
  dir = await mkdtemp(join(tmpdir(), 'migrate-tls-'));
  caFile = join(dir, 'ca.crt');
  server = await startPostgres({ tls: await makeCertificates() });
  plain = await startPostgres();
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await plain?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Connects as the engine does and says whether the session is encrypted. */
async function usesTls(url: string, sslmode: SslMode, sslRootCert?: string): Promise<boolean> {
  const client = await connectClient(
    resolveConnection({ databaseUrl: url, sslmode, sslRootCert, env: {} }),
    'tls-test',
  );
  try {
    const { rows } = await client.query<{ ssl: boolean }>(
      'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
    );
    return rows[0]!.ssl;
  } finally {
    await client.end();
  }
}

suite('sslmode against a TLS server, as libpq', () => {
  const byIp = () => `postgres://postgres@127.0.0.1:${server.port}/postgres`;
  const byName = () => `postgres://postgres@localhost:${server.port}/postgres`;

  test('disable connects in plain text; prefer and require encrypt without checking the certificate', async () => {
    expect(await usesTls(byIp(), 'disable')).toBe(false);
    expect(await usesTls(byIp(), 'prefer')).toBe(true);
    expect(await usesTls(byIp(), 'require')).toBe(true);
  });

  test('verify-ca needs the CA but not a matching host name', async () => {
    await expect(usesTls(byIp(), 'verify-ca')).rejects.toThrow(DatabaseConnectionError);
    await expect(usesTls(byIp(), 'verify-ca')).rejects.toThrow(/certificate/);
    expect(await usesTls(byIp(), 'verify-ca', caFile)).toBe(true);
  });

  test('verify-full needs the CA and a host name the certificate names', async () => {
    await expect(usesTls(byIp(), 'verify-full', caFile)).rejects.toThrow(
      /Could not connect to PostgreSQL at postgres@127\.0\.0\.1.*sslmode=verify-full.*does not match certificate's altnames/,
    );
    expect(await usesTls(byName(), 'verify-full', caFile)).toBe(true);
  });

  test('against a server without TLS, prefer falls back to plain and require fails', async () => {
    const url = `postgres://postgres@127.0.0.1:${plain.port}/postgres`;
    expect(await usesTls(url, 'prefer')).toBe(false);
    await expect(usesTls(url, 'require')).rejects.toThrow(/does not support SSL/);
  });
});
