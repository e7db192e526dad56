import { describe, expect, test } from '@jest/globals';
import { escapeMarkdown, fencedBlock } from '../../packages/core/escape.ts';
import { type MigrationResult, renderMigrationSummary } from '../../packages/migrate/index.ts';

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
    expect(md).toContain('current version 2 · 1 applied by this run · 0 pending · took 1.5s');
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
            sample: ['{"v":"| [link](http://e) @team"}'],
          },
        ],
        failure: { message: 'boom\n```\n# not a heading' },
      }),
    );
    expect(md).toContain('| 1 | x\\|&lt;img src=x&gt; | ❌ failed |');
    // core's escaping: no bare URL is linked, no one is mentioned, quotes are entities.
    expect(md).toContain('\\[link\\]\\(http:\\/\\/e\\) &#64;team&quot;');
    expect(md).not.toContain('http://');
    expect(md).not.toContain('<img');
    // Quoted so it wraps; the fence and the heading in the error stay text.
    expect(md).toContain('> boom<br>\n> \\`\\`\\`<br>\n> \\# not a heading');
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
      '<details><summary><b>3_idx.sql</b> (no transaction)</summary>\n\n```sql\nCREATE INDEX CONCURRENTLY i ON t (a);\n```\n\n</details>',
    );
    expect(md).toContain('1 planned');
  });

  test('a plan too big for a step summary is cut under 1 MiB with a note; verdict, table and drift stay', () => {
    // 30 migrations of 41 KB each: 1.24 MB of SQL, as measured on a real set.
    const sql = `INSERT INTO t VALUES ${Array.from({ length: 2800 }, (_, i) => `(${i}, 'x')`).join(', ')};`;
    const migrations = Array.from({ length: 30 }, (_, i) => ({
      ...row,
      version: String(i + 1),
      name: `seed_${i + 1}`,
      file: `${i + 1}_seed_${i + 1}.sql`,
      state: 'planned' as const,
      sql,
    }));
    const md = renderMigrationSummary(
      result({
        command: 'plan',
        pending: migrations.map((m) => m.version),
        migrations,
        drift: [{ kind: 'out-of-order', version: '1', name: 'seed_1', file: '1_seed_1.sql', detail: 'late' }],
      }),
    );
    expect(Buffer.byteLength(sql) * 30).toBeGreaterThan(1024 * 1024);
    expect(Buffer.byteLength(md)).toBeLessThan(1024 * 1024 - 8 * 1024);
    expect(md).toContain('### Migrations: plan succeeded');
    expect(md).toContain('| 30 | seed\\_30 | 📝 planned |');
    expect(md).toContain('#### Drift');
    const shown = md.split('<details>').length - 1;
    expect(shown).toBeGreaterThan(20);
    expect(shown).toBeLessThan(30);
    expect(md.split('</details>').length - 1).toBe(shown);
    expect(md).toContain(
      `> ✂️ The SQL of ${30 - shown} more migration(s) is not shown: GitHub drops a step summary over 1 MiB.`,
    );
  });

  test('one migration too big for the summary shows its beginning, cut at a line, with its size', () => {
    const sql = Array.from(
      { length: 100_000 },
      (_, i) => `INSERT INTO t VALUES (${i}, 'a row of a seed file');`,
    ).join('\n');
    const md = renderMigrationSummary(
      result({
        command: 'plan',
        pending: ['1'],
        migrations: [
          { ...row, version: '1', name: 'seed', file: '1_seed.sql', state: 'planned' as const, sql },
        ],
      }),
    );
    expect(Buffer.byteLength(md)).toBeLessThan(1024 * 1024);
    expect(md).toMatch(/<summary><b>1_seed\.sql<\/b>: the first \d{3,4} KiB of 5\.\d MiB<\/summary>/);
    expect(md).toContain("INSERT INTO t VALUES (0, 'a row of a seed file');");
    expect(md).toMatch(/INSERT INTO t VALUES \(\d+, 'a row of a seed file'\);\n```/);
    expect(md).toContain(
      "> ✂️ The last migration's SQL is cut: GitHub drops a step summary over 1 MiB. Its file holds it.",
    );
  });

  test('a table too long for the budget is cut with a note too', () => {
    const migrations = Array.from({ length: 200 }, (_, i) => ({
      ...row,
      version: String(i + 1),
      name: `m${i + 1}`,
      file: `${i + 1}_m.sql`,
      state: 'migrated' as const,
    }));
    const md = renderMigrationSummary(result({ migrations }), { budgetBytes: 6000 });
    expect(Buffer.byteLength(md)).toBeLessThanOrEqual(6000);
    expect(md).toContain('| 1 | m1 | 🆕 migrated |');
    expect(md).not.toContain('| 200 | m200 |');
    expect(md).toMatch(/> ✂️ \d+ more migration\(s\) are not listed/);
  });

  test('of the migrations applied before the run, only the newest five are listed; the rest are counted', () => {
    const migrations = [
      ...Array.from({ length: 500 }, (_, i) => ({
        ...row,
        version: String(i + 1),
        name: `m${i + 1}`,
        file: `${i + 1}_m.sql`,
        state: 'applied' as const,
      })),
      { ...row, version: '501', name: 'new', file: '501_new.sql', state: 'migrated' as const },
      { ...row, version: '502', name: 'later', file: '502_later.sql', state: 'pending' as const },
    ];
    const md = renderMigrationSummary(result({ migrations, applied: ['501'], pending: ['502'] }));
    expect(md).toContain(
      '495 migration(s) applied before this run are not listed, only the newest 5; the `result` output lists every one.',
    );
    expect(md).not.toContain('| 495 | m495 |');
    for (const v of [496, 500]) expect(md).toContain(`| ${v} | m${v} | ✅ applied |`);
    expect(md).toContain('| 501 | new | 🆕 migrated |');
    expect(md).toContain('| 502 | later | ⏳ pending |');
    expect(md.split('\n').filter((l) => l.startsWith('| ')).length).toBe(1 + 5 + 2);
    // Five or fewer: nothing is said about hidden rows.
    expect(renderMigrationSummary(result({ migrations: migrations.slice(495) }))).not.toContain('not listed');
  });

  test('a migration that failed part-way in an earlier run is explained: what it recorded, what to do', () => {
    const md = renderMigrationSummary(
      result({
        command: 'status',
        pending: ['12'],
        migrations: [
          {
            ...row,
            version: '12',
            name: 'idx',
            file: '12_idx.sql',
            state: 'failed',
            transactional: false,
            error: 'started by acme/shop#7.1 migrate at 2026-12-02T05:00:00.000Z and did not finish',
          },
        ],
      }),
    );
    expect(md).toContain('#### Failed part-way (blocks up)');
    expect(md).toContain(
      `- ${escapeMarkdown('12_idx.sql')}: ${escapeMarkdown('started by acme/shop#7.1 migrate at 2026-12-02T05:00:00.000Z and did not finish')}`,
    );
    expect(md).toContain('revert it with down, or mark it applied with baseline');
  });

  test('escapeMarkdown and fencedBlock', () => {
    expect(escapeMarkdown('*a* _b_ `c`\nd')).toBe('\\*a\\* \\_b\\_ \\`c\\` d');
    expect(fencedBlock('a ```` b')).toBe('`````\na ```` b\n`````');
  });
});
