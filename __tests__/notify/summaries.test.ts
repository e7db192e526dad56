import { describe, expect, test } from '@jest/globals';
import { codeSpan, escapeHtml } from '../../packages/core/escape.ts';
import { capMarkdown, STEP_SUMMARY_LIMIT_BYTES } from '../../packages/core/summary-cap.ts';
import { renderGateSummary } from '../../packages/health/summary.ts';
import { renderMigrationSummary } from '../../packages/migrate/index.ts';
import { CHART_PALETTE } from '../../packages/notify/chart.ts';
import { renderNotifySummary } from '../../packages/notify/summary.ts';
import { renderGateSummary as renderReleaseGateSummary } from '../../packages/release/summary.ts';
import { renderCanarySummary } from '../../packages/rollout/canary-summary.ts';
import { renderDeploySummary } from '../../packages/rollout/deploy-summary.ts';
import {
  abortedCanary,
  failedMigration,
  IMAGE,
  openGate,
  STABLE,
  soakResult,
  stagingDeploy,
} from './summary-fixtures.ts';

describe('Markdown that shows what it says', () => {
  test('a code span shows the image reference exactly: no backslash, no entity inside backticks', () => {
    const md = renderCanarySummary(abortedCanary(), 'shop');
    const spans = md.match(/`[^`]+`/g) ?? [];
    expect(spans).toContain(`\`${IMAGE}\``);
    expect(spans).toContain(`\`${STABLE}\``);
    for (const span of spans) expect(span).not.toMatch(/\\|&#\d+;|&[a-z]+;/);
    expect(codeSpan('a`b')).toBe('``a`b``');
    expect(codeSpan('x|y')).toBe('`x¦y`');
  });

  test('<summary> lines carry HTML entities, never Markdown backslashes', () => {
    const md = renderGateSummary(soakResult(), 'staging soak');
    const summaries = md.match(/<summary>.*<\/summary>/g) ?? [];
    expect(summaries.length).toBeGreaterThan(0);
    for (const s of summaries) expect(s).not.toContain('\\');
    expect(escapeHtml('pod shop-8559f86f84-c4htx <b>')).toBe('pod shop-8559f86f84-c4htx &lt;b&gt;');
  });

  test('the canary columns are filled without a metrics endpoint: the pods share and the failed probes', () => {
    const md = renderCanarySummary(abortedCanary(), 'shop');
    const cells = (step: string) =>
      md
        .split('\n')
        .find((l) => l.startsWith(`| ${step} |`))!
        .split('|')
        .map((c) => c.trim());
    expect(cells('1').slice(5, 7)).toEqual(['10% of pods (requests not measured)', '0/5 probes failed (0%)']);
    expect(cells('2').slice(5, 7)).toEqual([
      '50% of pods (requests not measured)',
      '3/5 probes failed (60%)',
    ]);
    expect(md).toContain('bar [10, 50]');
    expect(md).toContain('line [0, 60]');
  });
});

describe('charts readable in both themes, scaled to their data', () => {
  const md = renderGateSummary(soakResult(), 'staging soak');
  const charts = md
    .split('```mermaid')
    .slice(1)
    .map((c) => c.slice(0, c.indexOf('```')));

  test('one chart for the latency, none for the constant pod count, which is said in words', () => {
    expect(charts).toHaveLength(1);
    expect(md).toContain('31 measurement\\(s\\), 3 pods throughout');
  });

  test('its own palette, a fixed small height, the y axis to the data with a unit, a time axis not 31 labels', () => {
    const chart = charts[0]!;
    expect(chart).toContain(`plotColorPalette: "${CHART_PALETTE[0]}"`);
    expect(chart).toMatch(/height: (\d+)/);
    expect(Number(/height: (\d+)/.exec(chart)![1])).toBeLessThanOrEqual(300);
    expect(chart).toContain('y-axis "latency (ms)" 0 --> 100');
    expect(chart).toContain('x-axis "minutes" 0 --> 15');
    expect(chart).not.toContain('+30s');
    // The 500 ms limit is far above 2–61 ms: named in words, not drawn as a line that flattens the data.
    expect(chart.match(/\bline \[/g)).toHaveLength(1);
    expect(md).toContain('threshold 500 ms, not drawn: far from every value');
  });
});

describe('the 1 MiB step summary cap', () => {
  test('30 large migrations (1.24 MB) are cut under 1 MiB at a line, open blocks closed, with a note', () => {
    const sql = `${'INSERT INTO t VALUES (1);\n'.repeat(1600)}`;
    const parts: string[] = ['### Migrations: plan succeeded', ''];
    for (let i = 1; i <= 30; i++)
      parts.push(
        `<details><summary>${String(i).padStart(3, '0')}_big.sql</summary>`,
        '',
        '```sql',
        sql,
        '```',
        '',
        '</details>',
        '',
      );
    const markdown = parts.join('\n');
    expect(Buffer.byteLength(markdown)).toBeGreaterThan(1_240_000);
    const capped = capMarkdown(markdown);
    expect(Buffer.byteLength(capped)).toBeLessThan(STEP_SUMMARY_LIMIT_BYTES);
    expect(capped).toMatch(/> ⚠️ \*\*This summary was cut\*\*: [\d,]+ of [\d,]+ bytes are left out/);
    const fences = capped.split('\n').filter((l) => /^```/.test(l)).length;
    expect(fences % 2).toBe(0);
    expect((capped.match(/<details>/g) ?? []).length).toBe((capped.match(/<\/details>/g) ?? []).length);
    expect(capMarkdown('small')).toBe('small');
  });
});

describe('one headline, one metadata table, a failure that wraps', () => {
  const notify = renderNotifySummary({
    event: 'succeeded',
    app: 'shop',
    environment: 'staging',
    version: IMAGE,
    stages: [{ name: 'staging', state: 'succeeded' }],
    mentions: [],
    at: Date.UTC(2026, 11, 1, 12),
  });
  const headlines = (md: string) => md.match(/^### .*$/gm) ?? [];
  const metadataTables = (md: string) => md.match(/^\| \*\*Environment\*\* \|/gm)?.length ?? 0;
  const emptyHeaders = (md: string) => md.match(/^\|(\s*\|)+\s*$/gm) ?? [];

  test('deploy-env under notify (summary-header: false): one headline and one table for the job, its own facts on one line', () => {
    const deploy = renderDeploySummary(stagingDeploy(), {
      app: 'shop',
      environment: 'staging',
      header: false,
    });
    const job = `${deploy}\n${notify}`;
    expect(headlines(job)).toEqual(['### ✅ shop deployed to staging']);
    expect(metadataTables(job)).toBe(1);
    expect(job.match(/^flowchart LR$/gm)).toHaveLength(1);
    expect(deploy).toMatch(/^#### Deploy: applied and rolled out$/m);
    expect(deploy).toContain(
      `**Deployment/shop**: \`${STABLE}\` → \`${IMAGE}\` · revision 1 → 2 · **Duration**: 41.4s`,
    );
    expect(deploy).toContain('| Deployment/shop | ✏️ configured |');
  });

  test('deploy-env on its own keeps its headline and table, under a real header row', () => {
    const deploy = renderDeploySummary(stagingDeploy(), { app: 'shop', environment: 'staging' });
    expect(headlines(deploy)).toEqual(['### ✅ shop deployed to staging']);
    expect(deploy).toContain('| field | value |\n|---|---|\n| **Environment** |');
  });

  test('no metadata or gate table starts with an empty header row', () => {
    const gate = renderReleaseGateSummary(openGate(), 'staging', 'before the first change');
    const deploy = renderDeploySummary(stagingDeploy(), { app: 'shop', environment: 'staging' });
    for (const md of [notify, gate, deploy]) expect(emptyHeaders(md)).toEqual([]);
    expect(notify).toContain('| field | value |\n|---|---|\n| **Environment** | staging |');
    expect(gate).toContain('| check | state |\n|---|---|\n| window | no deploy window set |');
  });

  test('the migration failure is a quoted paragraph (it wraps), the restore command its own collapsed block', () => {
    const md = renderMigrationSummary(failedMigration());
    const failure = md.slice(md.indexOf('#### Failure'), md.indexOf('| Version |'));
    const message = failure.slice(0, failure.indexOf('To return the database'));
    expect(message).not.toMatch(/^```|<pre/m);
    expect(failure).toContain(
      '> 004\\_add\\_order\\_priority\\.sql failed: column &quot;missing\\_column&quot; does not exist \\(SQLSTATE 42703\\)<br>\n> Statement at line 4',
    );
    expect(failure).toContain('The 1 migration\\(s\\) before it in this run stay applied\\.');
    // The command once, inside <details>, not also in the quoted message.
    expect(md.split('pg_restore --clean').length - 1).toBe(1);
    expect(failure).toMatch(
      /<details><summary>restore command<\/summary>\n\n```sh\npg_restore --clean [^\n]+\n```\n\n<\/details>/,
    );
  });
});
