import { describe, expect, test } from '@jest/globals';
import { capMarkdown, STEP_SUMMARY_LIMIT_BYTES } from '../../packages/core/summary-cap.ts';
import { renderGateSummary } from '../../packages/health/summary.ts';
import { CHART_PALETTE } from '../../packages/notify/chart.ts';
import { codeSpan, escapeHtml } from '../../packages/notify/escape.ts';
import { renderCanarySummary } from '../../packages/rollout/canary-summary.ts';
import { abortedCanary, IMAGE, STABLE, soakResult } from './summary-fixtures.ts';

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
