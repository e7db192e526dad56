import { codeSpan, escapeHtml, escapeMarkdown, escapeMermaidLabel } from '../../packages/core/escape.ts';
import { formatDuration } from '../../packages/core/index.ts';
import type { JobRecord } from '../runners/workflow-runner.ts';
import type { RehearseResult } from './rehearse.ts';
import { expectationFor } from './scenarios.ts';
import { jobSummary, renderAnnotations, runAnnotations } from './summary-page.ts';

const ICON = { success: '✅', failure: '❌', skipped: '⏭️', cancelled: '🚫' } as const;
const STYLE = {
  success: 'fill:#dafbe1,stroke:#1a7f37,color:#116329',
  failure: 'fill:#ffebe9,stroke:#cf222e,color:#a40e26',
  skipped: 'fill:#f6f8fa,stroke:#d0d7de,color:#8c959f,stroke-dasharray:4 3',
  cancelled: 'fill:#f6f8fa,stroke:#57606a,color:#57606a',
  notrun: 'fill:#f6f8fa,stroke:#d0d7de,color:#8c959f,stroke-dasharray:4 3',
} as const;

function find(result: RehearseResult, suffix: string): JobRecord | undefined {
  for (const { run } of [...result.runs].reverse()) {
    const job = run.jobs.find((j) => j.path.endsWith(suffix));
    if (job) return job;
  }
  return undefined;
}

/** The seed-style pipeline flowchart, each stage coloured by what happened to it. */
export function renderFlowchart(result: RehearseResult): string {
  const stage = (suffix: string) => find(result, suffix)?.conclusion ?? 'notrun';
  const nodes: [string, string, string][] = [
    ['build', 'build image', stage('build')],
    ['dev', 'dev<br/>smoke + health', stage('dev/deploy')],
    ['staging', 'staging<br/>migrate, deploy, soak', stage('staging/deploy')],
    ['tests', 'staging tests<br/>integration, e2e, perf', stage('staging-tests')],
    [
      'approval',
      'approval<br/>production reviewers',
      find(result, 'production/deploy')
        ? find(result, 'production/deploy')?.reason?.includes('rejected')
          ? 'failure'
          : 'success'
        : 'notrun',
    ],
    ['production', `production<br/>${result.strategy}, soak`, stage('production/deploy')],
  ];
  const label = (id: string, text: string, state: string) =>
    `  ${id}["${escapeMermaidLabel(text).replace(/#lt;br\/#gt;/g, '<br/>')}<br/>${state === 'notrun' ? 'not run' : state}"]:::${state}`;
  return [
    '```mermaid',
    'flowchart LR',
    ...nodes.map(([id, text, state]) => label(id, text, state)),
    '  build --> dev',
    '  build --> staging --> tests --> approval --> production',
    ...Object.entries(STYLE).map(([k, v]) => `  classDef ${k} ${v}`),
    '```',
  ].join('\n');
}

/** Which build an image is: the feature branch's, main's, or the previous release; undefined for any other. */
export function buildOf(image: string | undefined, images: RehearseResult['images']): string | undefined {
  if (image === images.main) return 'main build';
  if (image === images.feature) return 'feature build';
  if (image === images.previous) return 'previous release';
  return undefined;
}

export function renderReport(result: RehearseResult): string {
  const expected = expectationFor(result.scenario, result.strategy);
  const out: string[] = [
    `# Rehearsal: ${result.scenario} (${result.strategy}) — ${result.ok ? 'ended as expected' : 'did NOT end as expected'}`,
    '',
    `> ${escapeMarkdown(expected.summary)}`,
    '',
    `Finished in ${formatDuration(result.durationMs)}.`,
    '',
    renderFlowchart(result),
    '',
  ];
  if (result.mismatches.length > 0)
    out.push(
      '## What differed from the expected ending',
      '',
      ...result.mismatches.map((m) => `- ${escapeMarkdown(m)}`),
      '',
    );
  out.push(
    '## Where things ended',
    '',
    '| environment | image | revision | canary | migrations applied |',
    '|---|---|---|---|---|',
  );
  for (const s of result.state) {
    const which = buildOf(s.image, result.images) ?? 'unknown';
    out.push(
      `| ${s.environment} | ${codeSpan(s.image ?? '-')} (${which}) | ${s.revision ?? '-'} | ${s.canary} | ${s.migrations.join(', ') || '-'} |`,
    );
  }
  out.push('');
  for (const { label, run } of result.runs) {
    out.push(
      `## Run: ${escapeMarkdown(label)} — ${run.conclusion}`,
      '',
      '| job | result | duration | note |',
      '|---|---|---|---|',
    );
    for (const job of run.jobs)
      out.push(
        `| ${escapeMarkdown(job.path)} | ${ICON[job.conclusion]} ${job.conclusion} | ${formatDuration(job.durationMs)} | ${escapeMarkdown(job.reason ?? '')} |`,
      );
    out.push('');
    // The run page as github.com orders it: the annotations (the production plan's digest among
    // them), then each job's summary in the order the jobs finished.
    const annotations = renderAnnotations(runAnnotations(run));
    const summaries = run.jobs.filter((j) => jobSummary(j));
    if (annotations || summaries.length > 0) out.push('### The run page', '');
    if (annotations) out.push(annotations);
    for (const job of summaries)
      out.push(
        `<details><summary>${escapeHtml(job.path)} summary</summary>`,
        '',
        jobSummary(job),
        '',
        '</details>',
        '',
      );
    for (const job of run.jobs.filter((j) => j.steps.length > 0)) {
      out.push(
        `### Steps of ${escapeMarkdown(job.path)}`,
        '',
        '| step | result | duration | error |',
        '|---|---|---|---|',
      );
      for (const step of job.steps)
        out.push(
          `| ${escapeMarkdown(step.name)} | ${ICON[step.conclusion]} ${step.kind === 'skipped-action' ? 'skipped (not run locally)' : step.conclusion} | ${formatDuration(step.durationMs)} | ${escapeMarkdown(step.error ?? '')} |`,
        );
      out.push('');
    }
  }
  out.push('## Slack messages', '');
  if (result.slack.length === 0) out.push('(none)', '');
  for (const m of result.slack) {
    const header = (m.blocks[0] as { text?: { text?: string } } | undefined)?.text?.text;
    out.push(
      `- ${m.threadTs ? '↳ thread reply' : `message ${m.ts}`}${m.edits.length ? ` (updated ${m.edits.length} time(s))` : ''}: ${escapeMarkdown(header ?? m.text)}`,
    );
  }
  out.push(
    '',
    '## GitHub deployments',
    '',
    '| id | environment | production | statuses |',
    '|---|---|---|---|',
  );
  for (const d of result.deployments)
    out.push(
      `| ${d.id} | ${d.environment} | ${d.production_environment} | ${d.statuses.map((s) => s.state).join(' → ')} |`,
    );
  out.push('');
  return `${out.join('\n')}\n`;
}
