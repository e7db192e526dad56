import { describe, expect, test } from '@jest/globals';
import { renderGateSummary } from '../../packages/health/summary.ts';
import { renderMigrationSummary } from '../../packages/migrate/index.ts';
import { renderNotifySummary } from '../../packages/notify/summary.ts';
import { renderCanarySummary } from '../../packages/rollout/canary-summary.ts';
import { renderDeploySummary } from '../../packages/rollout/deploy-summary.ts';
import type { ManifestPlan } from '../../packages/rollout/plan.ts';
import { renderManifestPlan } from '../../packages/rollout/plan-summary.ts';
import { type RenderReport, renderSummary, type Theme } from '../../tooling/test-support/summary-render.ts';
import {
  abortedCanary,
  failedMigration,
  IMAGE,
  STABLE,
  soakResult,
  stagingDeploy,
} from './summary-fixtures.ts';

/** WCAG relative luminance and contrast ratio, for the colours the charts draw with. */
function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5]
    .map((i) => Number.parseInt(hex.slice(i, i + 2), 16) / 255)
    .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}
function contrast(a: string, b: string): number {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x! + 0.05) / (y! + 0.05);
}
/** What Mermaid paints behind a chart: the page in the default theme, #333 in the dark theme. */
const CHART_BACKGROUND: Record<Theme, string> = { light: '#ffffff', dark: '#333333' };

const plan: ManifestPlan = {
  namespace: 'shop-production',
  namespaceExists: true,
  counts: { changed: 1, added: 1, unchanged: 1, removed: 0, unreadable: 1 },
  objects: [
    {
      kind: 'Deployment',
      name: 'shop',
      change: 'changed',
      source: 'kustomize k8s/production (document 3)',
      callouts: ['replicas 3 → 10', `image ${STABLE} → ${IMAGE}`],
      fields: [
        { path: 'spec.replicas', before: '3', after: '10' },
        {
          path: 'spec.template.spec.containers.0.image',
          before: JSON.stringify(STABLE),
          after: JSON.stringify(IMAGE),
        },
      ],
    },
    {
      kind: 'ConfigMap',
      name: 'shop-settings-c8t88cdk4d',
      change: 'added',
      replaces: 'shop-settings-5k299btm8t',
      source: 'kustomize k8s/production (document 1)',
      callouts: ['LOG_LEVEL: info → warn'],
      fields: [{ path: 'data.LOG_LEVEL', before: '"info"', after: '"warn"' }],
    },
    { kind: 'Secret', name: 'shop-db', change: 'unreadable', source: 'x', callouts: [], fields: [] },
    { kind: 'Service', name: 'shop', change: 'unchanged', source: 'x', callouts: [], fields: [] },
  ],
};

const summaries: Record<string, { markdown: string; diagrams: number }> = {
  'staging soak (health gate)': { markdown: renderGateSummary(soakResult(), 'staging soak'), diagrams: 1 },
  'aborted canary': { markdown: renderCanarySummary(abortedCanary(), 'shop'), diagrams: 1 },
  'production plan': {
    markdown: renderManifestPlan(plan, { app: 'shop', environment: 'production', image: IMAGE }),
    diagrams: 0,
  },
  'failed migration': { markdown: renderMigrationSummary(failedMigration()), diagrams: 0 },
  'staging deploy under notify': {
    markdown: renderDeploySummary(stagingDeploy(), { app: 'shop', environment: 'staging', header: false }),
    diagrams: 0,
  },
  'awaiting approval (notify)': {
    markdown: renderNotifySummary({
      event: 'started',
      app: 'shop',
      environment: 'production',
      version: IMAGE,
      branch: 'feature/faster-checkout',
      stages: [
        { name: 'staging', state: 'succeeded' },
        { name: 'production', state: 'awaiting-approval' },
      ],
      mentions: [],
      at: Date.UTC(2026, 11, 1, 12),
    }),
    diagrams: 1,
  },
};

describe('summaries as GitHub renders them (GFM + Mermaid 11, headless Chromium)', () => {
  const rendered = new Map<string, RenderReport>();
  const render = async (name: string, theme: Theme) => {
    const key = `${name}/${theme}`;
    if (!rendered.has(key)) rendered.set(key, await renderSummary(summaries[name]!.markdown, { theme }));
    return rendered.get(key)!;
  };

  describe.each(['light', 'dark'] as const)('%s theme', (theme) => {
    test.each(Object.keys(summaries))(
      '%s: every diagram draws, charts are small and their data stands out',
      async (name) => {
        const report = await render(name, theme);
        expect(report.mermaidErrors).toEqual([]);
        expect(report.diagrams).toBe(summaries[name]!.diagrams);
        for (const h of report.diagramHeights) expect(h).toBeLessThanOrEqual(320);
        // WCAG asks 3:1 for graphics; Mermaid's own first colour (#ECECFF) has 1.17:1 on white.
        for (const color of report.plotColors)
          expect(`${color} ${contrast(color, CHART_BACKGROUND[theme]) >= 3 ? 'visible' : 'too faint'}`).toBe(
            `${color} visible`,
          );
      },
      120_000,
    );
  });

  test.each(Object.keys(summaries))(
    '%s: the reader sees no Markdown escapes or entities',
    async (name) => {
      const { text } = await render(name, 'light');
      expect(text).not.toMatch(/\\[-.()_@#*]|&#\d+;|&(amp|lt|gt|quot);/);
    },
    120_000,
  );

  test('the canary reference and the plan read exactly as the cluster has them', async () => {
    const canary = await render('aborted canary', 'light');
    expect(canary.text).toContain(`stable ${STABLE} · canary ${IMAGE}`);
    expect(canary.text).toContain('3/5 probes failed (60%)');
    const shown = await render('production plan', 'light');
    expect(shown.text).toContain('replicas 3 → 10');
    expect(shown.text).toContain('new generation of shop-settings-5k299btm8t: LOG_LEVEL: info → warn');
    expect(shown.text).toContain('not readable with the plan credentials');
  }, 120_000);

  test('the migration failure wraps at the page width: its last sentence is on the page, not past the edge', async () => {
    const { text, clipped } = await render('failed migration', 'light');
    expect(text).toContain('The 1 migration(s) before it in this run stay applied.');
    // Only the restore command may scroll sideways, in its own block.
    expect(clipped.filter((c) => !c.startsWith('pg_restore '))).toEqual([]);
    // The renderer sees a block too wide, so the assertion above can fail.
    const wide = await renderSummary(`\`\`\`\n${'x'.repeat(400)}\n\`\`\`\n`);
    expect(wide.clipped).toHaveLength(1);
  }, 120_000);

  test('a broken diagram is reported, so the tests above can fail', async () => {
    const report = await renderSummary('```mermaid\nxychart-beta\n  line [1, oops]\n```\n');
    expect(report.mermaidErrors).toHaveLength(1);
  }, 120_000);
});
