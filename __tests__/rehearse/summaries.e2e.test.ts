import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { POSTGRES_INSTALL_HINT, postgresAvailable } from '../../tooling/local-services/postgres.ts';
import { type RehearseResult, rehearse } from '../../tooling/rehearse/rehearse.ts';
import type { ScenarioName } from '../../tooling/rehearse/scenarios.ts';
import { jobSummary } from '../../tooling/rehearse/summary-page.ts';
import { renderSummary } from '../../tooling/test-support/summary-render.ts';

/**
 * What reviewers and the on-call see, from the four rehearsal scenarios through the real
 * workflows: every job summary and the report rendered as GitHub renders them, the production
 * plan on the page before the approval, and Slack naming the reason the failing step knew.
 */

const out = mkdtempSync(join(tmpdir(), 'rehearse-summaries-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

if (!postgresAvailable() && process.env.CI === 'true') throw new Error(POSTGRES_INSTALL_HINT);
const describeWithPostgres = postgresAvailable() ? describe : describe.skip;

const played = new Map<ScenarioName, RehearseResult>();
async function play(scenario: ScenarioName): Promise<RehearseResult> {
  if (!played.has(scenario))
    played.set(
      scenario,
      await rehearse({
        scenario,
        timeScale: 120,
        reportPath: join(out, `${scenario}.md`),
        approve: async () => true,
      }),
    );
  return played.get(scenario)!;
}

const lastRun = (r: RehearseResult) => r.runs.at(-1)!.run;
const job = (r: RehearseResult, suffix: string) => lastRun(r).jobs.find((j) => j.path.endsWith(suffix));
/** Slack's text with the zero-width spaces our escaping puts before * _ ~ ` and inside :// taken out. */
const slackText = (r: RehearseResult) =>
  JSON.stringify(r.slack.map((m) => ({ text: m.text, blocks: m.blocks }))).replace(/\u200b/g, '');

const TIMEOUT = 420_000;

describeWithPostgres.each(['healthy', 'bad-canary', 'failed-migration', 'crashloop'] as const)(
  '%s',
  (scenario) => {
    test(
      'every job summary and the report render (GFM + Mermaid 11), with no escapes showing',
      async () => {
        const r = await play(scenario);
        expect(r.mismatches).toEqual([]);
        const pages = r.runs
          .flatMap(({ run }) => run.jobs.map((j) => [j.path, jobSummary(j)] as const))
          .filter(([, md]) => md);
        expect(pages.length).toBeGreaterThanOrEqual(2);
        for (const [path, markdown] of [...pages, ['report', readFileSync(r.reportPath, 'utf8')] as const]) {
          const report = await renderSummary(markdown);
          expect({ path, errors: report.mermaidErrors }).toEqual({ path, errors: [] });
          for (const h of report.diagramHeights)
            expect({ path, height: Math.min(h, 320) }).toEqual({ path, height: h });
          expect({ path, escapes: report.text.match(/\\[-.()_@#]|&#\d+;/g) ?? [] }).toEqual({
            path,
            escapes: [],
          });
        }
      },
      TIMEOUT,
    );

    if (scenario === 'healthy' || scenario === 'bad-canary')
      test(
        "production's own plan is computed with read-only credentials before the approval",
        async () => {
          const r = await play(scenario);
          const plan = job(r, 'production-plan')!;
          expect(plan.conclusion).toBe('success');
          expect(plan.environment).toBe('production-plan');
          const jobs = lastRun(r).jobs.map((j) => j.path);
          expect(jobs.indexOf(plan.path)).toBeLessThan(jobs.indexOf('pipeline/production/deploy'));
          const md = jobSummary(plan);
          // Production is at 1,2 when the plan runs: its own plan holds 003, whatever staging ran.
          expect(md).toContain('Environment: **production**');
          expect(md).toContain('<b>003_index_orders_by_customer.sql</b> (no transaction)');
          expect(md).toContain('### 📋 What production will change: shop');
          expect(md).toMatch(
            /\| Deployment\/shop \| ✏️ changed \| image ghcr\\\.io\/acme\/shop&#64;sha256:[0-9a-f]{12}… → ghcr\\\.io\/acme\/shop&#64;sha256:[0-9a-f]{12}… \|/,
          );
          // The hash the canary stamps changes with the template: a change, never a removal.
          expect(md).toMatch(/^\+ spec\.template\.metadata\.annotations\.pipeline\.dev\/template-hash: /m);
          // One approval per main-branch run: the first release into empty environments, then this one.
          const approvals = r.slack
            .map((m) => m.text.replace(/\u200b/g, ''))
            .filter((t) => t.includes('production plan:'));
          expect(approvals[0]).toMatch(
            /production plan: staging ran it healthy \(deployment \d+, health gate passed: \d+ rounds over \w+\); first production release; 2 migration\(s\) to run \(1,2\), 0 lint finding\(s\); objects: 3 added/,
          );
          // The previous release's commit to this one's: the feature commit and its merge.
          expect(approvals.at(-1)).toMatch(
            /production plan: staging ran it healthy \(deployment \d+, health gate passed: \d+ rounds over \w+\); 2 commit\(s\); 1 migration\(s\) to run \(3\), \d+ lint finding\(s\); objects: 1 changed( ·|$)/,
          );
          // The review link is Slack markup, its :// intact (no zero-width space inside it).
          const review = r.slack.filter((m) => m.text.includes('production plan:')).at(-1)!;
          expect(review.text).toMatch(
            /<https:\/\/github\.com\/acme\/shop\/actions\/runs\/\d+\|Review the production plan and approve or reject>/,
          );
          // Its summary opens with the provenance and the commits, above the migrations and the diff.
          // The verdict is staging's health gate over its soak window, with its checks, not the rollout's status.
          expect(md).toMatch(
            /✅ \*\*staging ran this image healthy\*\*: deployment \[\d+\]\([^)]+\) of commit `9e8d7c6` on [\d: -]+UTC, health gate \*\*passed\*\*: \d+ rounds over \w+; checks: health, pods\./,
          );
          expect(md).toContain("**2 commits since production's last release**");
          expect(md).toContain('[#42](https://github.com/acme/shop/pull/42)');
          expect(md.indexOf('staging ran this image healthy')).toBeLessThan(
            md.indexOf('### Migrations: plan'),
          );
          expect(md.indexOf('⏸️ awaiting approval')).toBeLessThan(md.indexOf('### Migrations: plan'));
        },
        TIMEOUT,
      );

    test(
      'each page shows the approval heading once, and each job summary at most one metadata table and diagram',
      async () => {
        const r = await play(scenario);
        for (const { run } of r.runs) {
          const pages = run.jobs.map((j) => [j.path, jobSummary(j)] as const).filter(([, md]) => md);
          const waiting = pages.filter(([, md]) => /^### ⏸️ .* waiting for approval/m.test(md));
          expect(waiting.map(([path]) => path)).toEqual(
            waiting.length ? [expect.stringMatching(/production-plan$/)] : [],
          );
          for (const [path, md] of pages) {
            const count = (re: RegExp) => md.match(re)?.length ?? 0;
            expect({ path, tables: Math.min(count(/^\| \*\*Environment\*\* \|/gm), 1) }).toEqual({
              path,
              tables: count(/^\| \*\*Environment\*\* \|/gm),
            });
            expect({ path, diagrams: Math.min(count(/^flowchart LR$/gm), 1) }).toEqual({
              path,
              diagrams: count(/^flowchart LR$/gm),
            });
            expect({ path, empty: md.match(/^\|(\s*\|)+\s*$/gm) ?? [] }).toEqual({ path, empty: [] });
          }
        }
      },
      TIMEOUT,
    );

    if (scenario === 'healthy')
      test(
        "the staging job's summary has one metadata table and one current stage diagram",
        async () => {
          const md = jobSummary(job(await play(scenario), 'staging/deploy')!);
          expect(md.match(/\| \*\*Version\*\* \|/g)).toHaveLength(1);
          expect(md.match(/^\| \*\*Environment\*\* \|/gm)).toHaveLength(1);
          expect(md.match(/^### ✅ shop deployed to staging$/gm)).toHaveLength(1);
          expect(md.match(/^flowchart LR$/gm)).toHaveLength(1);
          expect(md).not.toContain('🔄 running');
        },
        TIMEOUT,
      );

    if (scenario === 'failed-migration')
      test(
        'Slack names the migration, PostgreSQL message and SQLSTATE, not "see the run"',
        async () => {
          const text = slackText(await play(scenario));
          expect(text).toContain(
            '004_add_order_priority.sql failed: column &quot;missing_column&quot; does not exist (SQLSTATE 42703)'.replace(
              /&quot;/g,
              '\\"',
            ),
          );
          expect(text).not.toContain('see the run for details');
        },
        TIMEOUT,
      );

    if (scenario === 'crashloop')
      test(
        "Slack names the pod's reason",
        async () => {
          const text = slackText(await play(scenario));
          expect(text).toMatch(
            /deployment \\"shop\\" [^.]*: pod shop-\w+-\w+ container shop is CrashLoopBackOff/,
          );
          expect(text).not.toContain('see the run for details');
        },
        TIMEOUT,
      );
  },
);

// production-lags, with every strategy: __tests__/rehearse/production-plan-page.e2e.test.ts.
