import type { ConnectionOptions } from 'node:tls';
import { describe, expect, test } from '@jest/globals';
import { InputError, MemoryLogger } from '../../packages/core/index.ts';
import { resolveConnection, tlsOptions } from '../../packages/migrate/index.ts';

describe('resolveConnection', () => {
  test('reads a URL, decoding the password and masking it and the URL before anything logs', () => {
    const logger = new MemoryLogger();
    const url = 'postgresql://app:p%40ss@db.internal:6543/shop?sslmode=verify-full&application_name=x';
    const target = resolveConnection({ databaseUrl: url, env: {}, logger });
    expect(target).toMatchObject({
      host: 'db.internal',
      port: 6543,
      user: 'app',
      password: 'p@ss',
      database: 'shop',
      sslmode: 'verify-full',
    });
    logger.info(`${url} p@ss`);
    expect(logger.text()).toBe('info: *** ***');
  });

  test('falls back to the PG* variables, and the explicit sslmode wins over URL and PGSSLMODE', () => {
    const env = {
      PGHOST: 'h',
      PGPORT: '5433',
      PGUSER: 'u',
      PGPASSWORD: 'pw',
      PGDATABASE: 'd',
      PGSSLMODE: 'require',
    };
    expect(resolveConnection({ env })).toMatchObject({
      host: 'h',
      port: 5433,
      user: 'u',
      password: 'pw',
      database: 'd',
      sslmode: 'require',
    });
    expect(resolveConnection({ env, databaseUrl: 'postgres://x@y/z?sslmode=disable' }).sslmode).toBe(
      'disable',
    );
    expect(
      resolveConnection({ env, databaseUrl: 'postgres://x@y/z?sslmode=disable', sslmode: 'verify-ca' })
        .sslmode,
    ).toBe('verify-ca');
    expect(resolveConnection({ env: {}, databaseUrl: 'postgres://x@y/z' }).sslmode).toBe('prefer');
  });

  test.each([
    ['not a url', /Input 'database-url' is not a URL/],
    ['mysql://u@h/d', /Input 'database-url' has the scheme mysql/],
    ['postgres://u@h/d?sslmode=sometimes', /Input 'database-url' has "sometimes", which is not an sslmode/],
    ['postgres://u@h/d?connect_timeout=soon', /connect_timeout/],
  ])('%s is an InputError', (databaseUrl, message) => {
    expect(() => resolveConnection({ databaseUrl, env: {} })).toThrow(InputError);
    expect(() => resolveConnection({ databaseUrl, env: {} })).toThrow(message);
  });

  test('a password with @ or / not percent-encoded is refused before any piece of it is masked', () => {
    const logger = new MemoryLogger();
    for (const databaseUrl of [
      'postgres://app:p@ss/w:rd%@127.0.0.1:5432/appdb',
      'postgres://app:a@b@db/app',
      'postgresql://app:a@b/c@db:5432/app?sslmode=require',
      'postgres://pwuser:p@ss/w:rd%20#?x y@127.0.0.1:54391/shop',
      'postgres://u:se#cret@h/d',
    ]) {
      expect(() => resolveConnection({ databaseUrl, env: {}, logger })).toThrow(
        "Input 'database-url' has an @, / or # in its user or password: they must be percent-encoded",
      );
    }
    logger.info('sign-up page');
    // Only whole URLs were masked, not a one-letter "password" that would hide every p.
    expect(logger.text()).toContain('info: sign-up page');
    // An @ in a query parameter or a path alone is not the user's, and an encoded password is fine.
    expect(resolveConnection({ databaseUrl: 'postgres://h/d@x', env: {} })).toMatchObject({
      database: 'd@x',
    });
    expect(
      resolveConnection({ databaseUrl: 'postgres://u:p%40ss@h/d?application_name=a@b', env: {} }),
    ).toMatchObject({
      host: 'h',
      password: 'p@ss',
    });
  });

  test('a malformed URL never appears in the error', () => {
    const secret = 'postgres://u:hunter2@h:99999/d';
    expect(() => resolveConnection({ databaseUrl: secret, env: {} })).toThrow(/^(?!.*hunter2)/);
  });
});

describe('tlsOptions maps sslmode as libpq does', () => {
  const base = resolveConnection({ databaseUrl: 'postgres://u@db.example/d', env: {} });
  test('disable: no TLS; prefer/require: TLS without certificate checks', () => {
    expect(tlsOptions({ ...base, sslmode: 'disable' })).toBe(false);
    expect(tlsOptions({ ...base, sslmode: 'prefer' })).toEqual({ rejectUnauthorized: false });
    expect(tlsOptions({ ...base, sslmode: 'require' })).toEqual({ rejectUnauthorized: false });
  });
  test('verify-ca checks the chain but not the host name; verify-full checks both', () => {
    const ca = tlsOptions({ ...base, sslmode: 'verify-ca' }) as ConnectionOptions;
    expect(ca).toMatchObject({ rejectUnauthorized: true });
    expect(ca.checkServerIdentity!('other.host', {} as never)).toBeUndefined();
    const full = tlsOptions({ ...base, sslmode: 'verify-full' });
    expect(full).toEqual({ rejectUnauthorized: true, servername: 'db.example' });
  });
  test('an unreadable sslrootcert is an InputError', () => {
    expect(() => tlsOptions({ ...base, sslmode: 'verify-full', sslRootCert: '/nonexistent/ca.pem' })).toThrow(
      /Input 'sslrootcert'/,
    );
  });
});
