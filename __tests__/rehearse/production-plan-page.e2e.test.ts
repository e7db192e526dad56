import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { POSTGRES_INSTALL_HINT, postgresAvailable } from '../../tooling/local-services/postgres.ts';
import { type RehearseResult, rehearse } from '../../tooling/rehearse/rehearse.ts';
import { type ScenarioName, STRATEGIES, type Strategy } from '../../tooling/rehearse/scenarios.ts';
import { jobSummary, runSummaryPage } from '../../tooling/rehearse/summary-page.ts';
import { renderSummary } from '../../tooling/test-support/summary-render.ts';

/**
 * The page a production reviewer decides from, laid out as github.com lays it out (the run's
 * annotations above every job summary, then the summaries in the order the jobs finished) and
 * rendered in Chromium: with every strategy, production lagging staging (its approval rejected
 * once), the production plan's digest is the first thing on the page, within one screen, and the
 * plan shows production's own pending migration and manifest diff and staging's soak verdict.
 * And a first release that deploys directly has one heading, one metadata table and one stage diagram.
 */

const out = mkdtempSync(join(tmpdir(), 'rehearse-plan-page-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

if (!postgresAvailable() && process.env.CI === 'true') throw new Error(POSTGRES_INSTALL_HINT);
const describeWithPostgres = postgresAvailable() ? describe : describe.skip;

const play = (scenario: ScenarioName, strategy: Strategy): Promise<RehearseResult> =>
  rehearse({
    scenario,
    strategy,
    timeScale: 120,
    reportPath: join(out, `${scenario}-${strategy}.md`),
    approve: async () => true,
  });

const lastRun = (r: RehearseResult) => r.runs.at(-1)!.run;
const job = (r: RehearseResult, suffix: string) => lastRun(r).jobs.find((j) => j.path.endsWith(suffix))!;
const ESCAPES = /\\[-.()_@#]|&#\d+;/g;
/** A laptop's browser window: what a reviewer sees without scrolling. */
const ONE_SCREEN = 900;
const TIMEOUT = 420_000;

describeWithPostgres.each(STRATEGIES)('production-lags, %s', (strategy) => {
  test(
    "the plan's digest opens the run page, within one screen, with production's own migration and diff",
    async () => {
      const r = await play('production-lags', strategy);
      expect(r.mismatches).toEqual([]);
      const rendered = await renderSummary(runSummaryPage(lastRun(r)));
      expect(rendered.mermaidErrors).toEqual([]);
      expect(rendered.text.match(ESCAPES) ?? []).toEqual([]);

      // First on the page, above the staging job's summary that finished before the plan job.
      expect(rendered.text.startsWith('Annotations')).toBe(true);
      const digest = rendered.annotations[0]!;
      expect(digest.text).toContain('shop to production: the plan you approve');
      expect(digest.bottom).toBeLessThan(ONE_SCREEN);
      expect(rendered.text.indexOf('the plan you approve')).toBeLessThan(
        rendered.text.indexOf('pipeline/staging/deploy summary'),
      );
      expect(rendered.text.indexOf('pipeline/staging/deploy summary')).toBeLessThan(
        rendered.text.indexOf('pipeline/production-plan summary'),
      );
      // What production runs and changes, computed against production, and where staging ran it.
      expect(digest.text).toContain(`Image: ${r.images.main}`);
      expect(digest.text).toMatch(
        /Staging: staging ran it healthy \(deployment \d+, health gate passed: \d+ rounds over \w+\)/,
      );
      expect(digest.text).toContain('Commits: 2 commit(s)');
      expect(digest.text).toContain(
        'Migrations: 1 migration(s) to run (3), 0 lint finding(s): 003_index_orders_by_customer.sql (no transaction)',
      );
      expect(digest.text).toMatch(
        /- Deployment\/shop(-blue|-green)?: (changed|added): [^\n]*image ghcr\.io\/acme\/shop@sha256:[0-9a-f]{12}… → ghcr\.io\/acme\/shop@sha256:[0-9a-f]{12}…/,
      );
      expect(digest.text).toMatch(/The whole plan: .*https:\/\/github\.com\/acme\/shop\/actions\/runs\/\d+/);

      // Staging ran 003 in the rejected run, so its own plan has nothing pending; production's has 003.
      const staging = jobSummary(job(r, 'staging/deploy'));
      expect(staging).toMatch(
        /Environment: \*\*staging\*\*\s+History table `[^`]+` · current version 3 · 0 planned/,
      );
      const plan = jobSummary(job(r, 'production-plan'));
      expect(plan).toMatch(
        /Environment: \*\*production\*\*\s+History table `[^`]+` · current version 2 · 1 planned/,
      );
      expect(plan).toContain('<b>003_index_orders_by_customer.sql</b> (no transaction)');
      expect(plan).toContain('### 📋 What production will change: shop');
      expect(plan).toMatch(/health gate \*\*passed\*\*: \d+ rounds over \w+; checks: health, pods\./);
      expect(rendered.text).toContain(
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_created_at_idx',
      );

      // The report shows each run's page in the same order: annotations, then the job summaries.
      const report = readFileSync(r.reportPath, 'utf8');
      const section = report.slice(report.lastIndexOf('## Run: main → staging → production'));
      expect(section.indexOf('the plan you approve')).toBeGreaterThan(0);
      expect(section.indexOf('the plan you approve')).toBeLessThan(
        section.indexOf('pipeline/staging/deploy summary'),
      );
    },
    TIMEOUT,
  );
});

describeWithPostgres.each(['canary', 'blue-green'] as const)('first-release, %s', (strategy) => {
  test(
    'the production summary of a release deployed directly has one heading, one metadata table and one stage diagram',
    async () => {
      const r = await play('first-release', strategy);
      expect(r.mismatches).toEqual([]);
      const md = jobSummary(job(r, 'production/deploy'));
      const count = (re: RegExp) => md.match(re)?.length ?? 0;
      expect(count(/^### ✅ shop deployed to production$/gm)).toBe(1);
      expect(count(/^\| \*\*Environment\*\* \|/gm)).toBe(1);
      // One stage diagram (blue-green's before/after diagram of the colours is another picture).
      expect(count(/^flowchart LR\n {2}s0\["/gm)).toBe(1);
      const rendered = await renderSummary(md);
      expect(rendered.mermaidErrors).toEqual([]);
      expect(rendered.text.match(ESCAPES) ?? []).toEqual([]);
      expect(rendered.text.match(/shop deployed to production/g)).toHaveLength(1);
    },
    TIMEOUT,
  );
});

describeWithPostgres('failed-soak, rolling', () => {
  test(
    "a soak that fails is recorded on the release's GitHub deployment as the gate's verdict, its deciding check marked",
    async () => {
      const r = await play('failed-soak', 'rolling');
      expect(r.mismatches).toEqual([]);
      const release = r.deployments.filter(
        (d) => d.environment === 'production' && (d.payload as { images?: unknown } | null)?.images,
      );
      const verdicts = release.at(-1)!.statuses.filter((s) => s.description.startsWith('health gate '));
      expect(verdicts.map((s) => s.state)).toEqual(['failure']);
      expect(verdicts[0]!.description).toMatch(
        /^health gate failed: \d+ rounds? over [\w.]+; checks: health \(failed\), pods$/,
      );
      // The releases before it passed their soak, and say so where the next plan reads it.
      const staging = r.deployments.filter(
        (d) => d.environment === 'staging' && (d.payload as { images?: unknown } | null)?.images,
      );
      expect(staging.at(-1)!.statuses.map((s) => s.description)).toContainEqual(
        expect.stringMatching(/^health gate passed: \d+ rounds over \w+; checks: health, pods$/),
      );
    },
    TIMEOUT,
  );
});
