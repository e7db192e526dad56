import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import {
  allowProblems,
  checksumOf,
  LINT_RULES,
  type LintRule,
  lintMigrations,
  loadMigrations,
  type Migration,
} from '../../packages/migrate/index.ts';

function migration(version: number, up: string, file = `${version}_m.sql`): Migration {
  return {
    version: BigInt(version),
    id: String(version),
    name: 'm',
    file,
    downFile: undefined,
    up,
    down: undefined,
    upTransactional: true,
    downTransactional: true,
    checksum: checksumOf(up),
  };
}

const dev = { production: false, statementLockTimeout: false };
const rules = (up: string, context = dev) => lintMigrations([migration(2, up)], context).map((f) => f.rule);

// Each rule: a statement it flags, and the safe way to do the same thing, which it does not.
const CASES: [LintRule, string, string][] = [
  [
    'add-column-volatile-default',
    'ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();',
    "ALTER TABLE users ADD COLUMN plan text DEFAULT 'free';",
  ],
  [
    'alter-column-type',
    'ALTER TABLE users ALTER COLUMN email TYPE varchar(100);',
    'ALTER TABLE users ADD COLUMN email_v2 varchar(100);',
  ],
  [
    'set-not-null',
    'ALTER TABLE users ALTER COLUMN email SET NOT NULL;',
    'ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;',
  ],
  [
    'create-index-blocking',
    'CREATE INDEX users_email ON users (email);',
    'CREATE INDEX CONCURRENTLY users_email ON users (email);',
  ],
  [
    'constraint-without-not-valid',
    'ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id);',
    'ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;',
  ],
  ['vacuum-full', 'VACUUM FULL users;', 'VACUUM users;'],
  ['cluster', 'CLUSTER users USING users_pkey;', 'ANALYZE users;'],
  [
    'drop-column',
    'ALTER TABLE users DROP COLUMN legacy;',
    'ALTER TABLE users DROP CONSTRAINT users_legacy_check;',
  ],
  [
    'rename-column',
    'ALTER TABLE users RENAME COLUMN email TO mail;',
    'ALTER TABLE users RENAME CONSTRAINT users_email_key TO users_mail_key;',
  ],
  ['drop-table', 'DROP TABLE sessions;', 'CREATE TABLE sessions_v2 (id int); DROP TABLE sessions_v2;'],
  ['rename-table', 'ALTER TABLE users RENAME TO accounts;', 'CREATE VIEW accounts AS SELECT * FROM users;'],
  [
    'add-not-null-without-default',
    'ALTER TABLE users ADD COLUMN tier text NOT NULL;',
    "ALTER TABLE users ADD COLUMN tier text NOT NULL DEFAULT 'free';",
  ],
  ['drop-object', 'DROP TYPE tier;', "CREATE TYPE tier_v2 AS ENUM ('free', 'pro');"],
  ['truncate', 'TRUNCATE audit_log;', "DELETE FROM audit_log WHERE at < now() - interval '90 days';"],
  ['delete-without-where', 'DELETE FROM audit_log;', 'DELETE FROM audit_log WHERE id < 1000;'],
  [
    'add-column-serial',
    'ALTER TABLE users ADD COLUMN seq bigserial;',
    'ALTER TABLE users ADD COLUMN seq bigint;',
  ],
  [
    'add-unique-blocking',
    'ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);',
    'ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx;',
  ],
  [
    'add-unique-blocking',
    'ALTER TABLE users ADD PRIMARY KEY (id);',
    'ALTER TABLE users ADD PRIMARY KEY USING INDEX users_id_idx;',
  ],
  ['drop-index-blocking', 'DROP INDEX users_email;', 'DROP INDEX CONCURRENTLY users_email;'],
  ['reindex-blocking', 'REINDEX TABLE users;', 'REINDEX TABLE CONCURRENTLY users;'],
  ['lock-table', 'LOCK TABLE users IN ACCESS EXCLUSIVE MODE;', "SET lock_timeout = '5s';"],
  [
    'rename-enum-value',
    "ALTER TYPE tier RENAME VALUE 'pro' TO 'premium';",
    "ALTER TYPE tier ADD VALUE 'premium';",
  ],
  [
    'drop-function',
    'DROP FUNCTION IF EXISTS old_helper();',
    'CREATE OR REPLACE FUNCTION old_helper() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;',
  ],
  [
    'update-without-where',
    "UPDATE users SET plan = 'free';",
    "CREATE TABLE plans (id int, name text); UPDATE plans SET name = 'free'; UPDATE users SET plan = 'free' WHERE id < 1000;",
  ],
];

describe('migration safety lint', () => {
  test('every rule has a case', () => {
    expect(new Set(CASES.map(([rule]) => rule))).toEqual(
      new Set(Object.keys(LINT_RULES).filter((r) => r !== 'missing-lock-timeout')),
    );
  });

  test.each(CASES)('%s: flagged, and its safe variant is not', (rule, flagged, safe) => {
    expect(rules(flagged)).toEqual([rule]);
    expect(rules(safe)).toEqual([]);
  });

  test('missing-lock-timeout: only in production, unless the file or the run sets one', () => {
    const alter = 'ALTER TABLE users ADD COLUMN plan text;';
    const prod = { production: true, statementLockTimeout: false };
    expect(rules(alter, prod)).toEqual(['missing-lock-timeout']);
    expect(rules(alter)).toEqual([]);
    expect(rules(`SET lock_timeout = '5s';\n${alter}`, prod)).toEqual([]);
    // Statements whose leading word no rule starts with are skipped, but set_config counts anywhere.
    expect(rules(`SELECT set_config('lock_timeout', '5s', false);\n${alter}`, prod)).toEqual([]);
    expect(rules(`INSERT INTO t SELECT set_config('lock_timeout', '5s', false);\n${alter}`, prod)).toEqual(
      [],
    );
    expect(rules(`INSERT INTO audit VALUES (1);\n${alter}`, prod)).toEqual(['missing-lock-timeout']);
    expect(rules(`/* why */ UPDATE users SET plan = 'free';`, prod)).toContain('update-without-where');
    expect(rules(alter, { production: true, statementLockTimeout: true })).toEqual([]);
    // A table the migration creates is nobody else's yet: nothing to wait for.
    expect(rules('CREATE TABLE plans (id int);\nCREATE INDEX plans_id ON plans (id);', prod)).toEqual([]);
  });

  test('tables created by the pending set are new: indexes, constraints and drops on them are fine', () => {
    const findings = lintMigrations(
      [
        migration(2, 'CREATE TABLE "Plans" (id int, owner int);'),
        migration(
          3,
          'CREATE INDEX plans_owner ON public."Plans" (owner);\nALTER TABLE "Plans" ADD FOREIGN KEY (owner) REFERENCES users (id);',
        ),
      ],
      dev,
    );
    expect(findings).toEqual([]);
  });

  test('a finding names file and line, why and the alternative; -- pipeline:allow acknowledges it with a reason', () => {
    const [finding] = lintMigrations(
      [
        migration(
          4,
          '-- backfill first\n\nALTER TABLE users\n  ALTER COLUMN email SET NOT NULL;',
          '4_email.sql',
        ),
      ],
      dev,
    );
    expect(finding).toEqual({
      file: '4_email.sql',
      line: 3,
      rule: 'set-not-null',
      statement: 'ALTER TABLE users ALTER COLUMN email SET NOT NULL',
      why: LINT_RULES['set-not-null'].why,
      instead: LINT_RULES['set-not-null'].instead,
      acknowledged: false,
    });
    const [acknowledged] = lintMigrations(
      [
        migration(
          4,
          '-- pipeline:allow set-not-null users has 40 rows\nALTER TABLE users ALTER COLUMN email SET NOT NULL;',
        ),
      ],
      dev,
    );
    expect(acknowledged).toMatchObject({ acknowledged: true, reason: 'users has 40 rows' });
    // An allow needs a reason, and names one rule.
    expect(
      lintMigrations(
        [migration(4, '-- pipeline:allow set-not-null\nALTER TABLE users ALTER COLUMN email SET NOT NULL;')],
        dev,
      )[0],
    ).toMatchObject({ acknowledged: false });
    expect(
      allowProblems([migration(4, '-- pipeline:allow set-not-null users has 40 rows\nSELECT 1;')]),
    ).toEqual([]);
    // A malformed allow line acknowledges nothing, and says so, naming file:line.
    expect(
      allowProblems([
        migration(
          4,
          '-- pipeline:allow set-not-null\n-- pipeline:allow set-not-nul it is small\n--pipeline:allow\nSELECT 1;',
          '4_email.sql',
        ),
      ]),
    ).toEqual([
      expect.objectContaining({
        file: '4_email.sql',
        line: 1,
        problem: expect.stringContaining('set-not-null without a reason'),
      }),
      expect.objectContaining({
        line: 2,
        problem: expect.stringContaining('"set-not-nul", which does not exist'),
      }),
      expect.objectContaining({ line: 3, problem: expect.stringContaining('names no rule and no reason') }),
    ]);
  });

  test('-- pipeline:allow lines in the header above -- migrate:up count, with file:line; those in the down section do not', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lint-header-'));
    try {
      writeFileSync(
        join(dir, '1_users.sql'),
        '-- migrate:up\nCREATE TABLE users (id int, email text, note text);\n',
      );
      writeFileSync(
        join(dir, '2_email.sql'),
        [
          '-- Make email required; users has 40 rows.',
          '-- pipeline:allow set-not-null users has 40 rows',
          '-- pipeline:allow drop-colum typo in the rule',
          '-- migrate:up',
          'ALTER TABLE users ALTER COLUMN email SET NOT NULL;',
          'ALTER TABLE users DROP COLUMN note;',
          '-- migrate:down',
          '-- pipeline:allow drop-column a down section acknowledges nothing',
          'ALTER TABLE users ALTER COLUMN email DROP NOT NULL;',
        ].join('\n'),
      );
      const pending = (await loadMigrations(dir)).slice(1);
      expect(lintMigrations(pending, dev)).toEqual([
        expect.objectContaining({
          line: 5,
          rule: 'set-not-null',
          acknowledged: true,
          reason: 'users has 40 rows',
        }),
        expect.objectContaining({ line: 6, rule: 'drop-column', acknowledged: false }),
      ]);
      expect(allowProblems(pending)).toEqual([
        expect.objectContaining({
          file: '2_email.sql',
          line: 3,
          problem: expect.stringContaining('"drop-colum", which does not exist'),
        }),
      ]);
      // The header is not part of the up section's checksum: adding an allow line is not an edit.
      expect(pending[0]!.checksum).toBe(checksumOf(pending[0]!.up));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('several actions of one ALTER TABLE are each judged; strings and comments do not trigger rules', () => {
    expect(
      rules(
        "ALTER TABLE users ADD COLUMN a int, DROP COLUMN b, ALTER COLUMN c TYPE bigint;\nINSERT INTO notes VALUES ('DROP TABLE users');\n-- TRUNCATE users;",
      ),
    ).toEqual(['drop-column', 'alter-column-type']);
  });
});
