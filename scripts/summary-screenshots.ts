// Plays rehearsal scenarios and screenshots their run summary pages as GitHub renders them
// (GFM + Mermaid 11 in headless Chromium, light and dark): the whole main-branch run page as GitHub
// orders it (annotations, the production plan's digest among them, above the job summaries in the
// order the jobs finished), its first screen, the production plan job, the staging and production
// deploy jobs. Prints every file written.
//   node scripts/summary-screenshots.ts [--out .rehearsal/screenshots] [scenario[:strategy] ...]
import { mkdirSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ScenarioName, Strategy } from '../tooling/rehearse/scenarios.ts';

// @actions/workflow-parser imports its JSON schemas without `with { type: 'json' }` (as bin/pipeline.js says).
registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context);
    if (resolved.url.endsWith('.json') && resolved.url.includes('/@actions/workflow-parser/'))
      return { ...resolved, format: 'json', importAttributes: { type: 'json' } };
    return resolved;
  },
});
const { rehearse } = await import('../tooling/rehearse/rehearse.ts');
const { SCENARIOS, STRATEGIES } = await import('../tooling/rehearse/scenarios.ts');
const { runSummaryPage } = await import('../tooling/rehearse/summary-page.ts');
const { screenshotSummary } = await import('../tooling/test-support/summary-render.ts');

const { values, positionals } = parseArgs({
  options: { out: { type: 'string', default: '.rehearsal/screenshots' } },
  allowPositionals: true,
});
const out = resolve(values.out!);
mkdirSync(out, { recursive: true });
const plays = (
  positionals.length
    ? positionals
    : ['healthy', 'production-lags:rolling', 'production-lags:canary', 'production-lags:blue-green']
).map((p) => p.split(':') as [ScenarioName, Strategy | undefined]);
for (const [scenario, strategy] of plays) {
  if (!(SCENARIOS as readonly string[]).includes(scenario)) throw new Error(`unknown scenario ${scenario}`);
  if (strategy && !(STRATEGIES as readonly string[]).includes(strategy))
    throw new Error(`unknown strategy ${strategy}`);
  const name = strategy ? `${scenario}-${strategy}` : scenario;
  const result = await rehearse({
    scenario,
    ...(strategy ? { strategy } : {}),
    approve: async () => true,
    timeScale: 60,
    reportPath: join(out, `${name}.md`),
  });
  console.log(
    `${name}: ${result.ok ? 'ended as expected' : `did NOT end as expected: ${result.mismatches.join('; ')}`}`,
  );
  const run = result.runs.at(-1)!.run;
  const pages: [string, string][] = [
    ['page', runSummaryPage(run)],
    ['page-top', runSummaryPage(run)],
    ['plan', runSummaryPage(run, (j) => /production-plan$|approval$/.test(j.path))],
    ['staging', runSummaryPage(run, (j) => j.path.endsWith('staging/deploy'))],
    ['production', runSummaryPage(run, (j) => j.path.endsWith('production/deploy'))],
    ['dev', runSummaryPage(run, (j) => j.path.endsWith('dev/deploy'))],
  ];
  for (const [page, markdown] of pages) {
    if (!markdown.trim()) continue;
    for (const theme of ['light', 'dark'] as const) {
      const file = join(out, `${name}-${page}-${theme}.png`);
      // page-top: the first screen a reviewer sees, as a 1100 × 900 browser window shows it.
      const report = await screenshotSummary(markdown, file, {
        theme,
        openDetails: !page.startsWith('page'),
        ...(page === 'page-top' ? { maxHeight: 900 } : {}),
      });
      console.log(
        `  ${file}${report.mermaidErrors.length ? `  MERMAID ERRORS: ${report.mermaidErrors.join(' | ')}` : ''}`,
      );
    }
  }
}
