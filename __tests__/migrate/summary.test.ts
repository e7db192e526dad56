import { describe, expect, test } from '@jest/globals';
import {
  escapeMarkdown,
  fencedBlock,
  type MigrationResult,
  renderMigrationSummary,
} from '../../packages/migrate/index.ts';

function result(over: Partial<MigrationResult> = {}): MigrationResult {
  return {
    command: 'up',
    table: 'public.schema_migrations',
    ok: true,
    migrations: [],
    applied: [],
    reverted: [],
    baselined: [],
    pending: [],
    currentVersion: undefined,
    backupPath: undefined,
    restoreCommand: undefined,
    drift: [],
    checks: [],
    constraints: [],
    failure: undefined,
    durationMs: 1500,
    ...over,
  };
}

const row = {
  durationMs: 12,
  appliedAt: undefined,
  appliedBy: undefined,
  transactional: true,
} as const;

describe('renderMigrationSummary', () => {
  test('renders the table of migrations with state and duration', () => {
    const md = renderMigrationSummary(
      result({
        applied: ['2'],
        currentVersion: '2',
        migrations: [
          { ...row, version: '1', name: 'users', file: '1_users.sql', state: 'applied' },
          { ...row, version: '2', name: 'orders', file: '2_orders.sql', state: 'migrated' },
        ],
      }),
    );
    expect(md).toContain('### Migrations: up succeeded');
    expect(md).toContain('current version 2 · 1 applied · 0 pending · took 1.5s');
    expect(md).toContain('| 1 | users | ✅ applied | 12ms |');
    expect(md).toContain('| 2 | orders | 🆕 migrated | 12ms |');
  });

  test('untrusted names, check samples and errors cannot inject Markdown or HTML', () => {
    const md = renderMigrationSummary(
      result({
        ok: false,
        migrations: [{ ...row, version: '1', name: 'x|<img src=x>', file: '1_x.sql', state: 'failed' }],
        checks: [
          {
            name: 'a_b',
            file: 'a_b.sql',
            passed: false,
            rowCount: 1,
            sample: ['{"v":"| [link](http://e)"}'],
          },
        ],
        failure: { message: 'boom\n```\n# not a heading' },
      }),
    );
    expect(md).toContain('| 1 | x\\|&lt;img src=x&gt; | ❌ failed |');
    expect(md).toContain('\\[link\\]\\(http://e\\)');
    expect(md).not.toContain('<img');
    expect(md).toContain('````\nboom\n```\n# not a heading\n````');
  });

  test('plan shows each migration SQL in a fenced block', () => {
    const md = renderMigrationSummary(
      result({
        command: 'plan',
        pending: ['3'],
        migrations: [
          {
            ...row,
            version: '3',
            name: 'idx',
            file: '3_idx.sql',
            state: 'planned',
            transactional: false,
            sql: 'CREATE INDEX CONCURRENTLY i ON t (a);',
          },
        ],
      }),
    );
    expect(md).toContain(
      '**3\\_idx\\.sql** (no transaction)\n\n```sql\nCREATE INDEX CONCURRENTLY i ON t (a);\n```',
    );
    expect(md).toContain('1 planned');
  });

  test('escapeMarkdown and fencedBlock', () => {
    expect(escapeMarkdown('*a* _b_ `c`\nd')).toBe('\\*a\\* \\_b\\_ \\`c\\` d');
    expect(fencedBlock('a ```` b')).toBe('`````\na ```` b\n`````');
  });
});
