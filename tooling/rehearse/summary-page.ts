import { escapeHtml } from '../../packages/core/escape.ts';
import type { JobRecord, RunAnnotation, WorkflowRun } from '../runners/workflow-runner.ts';

/** The Markdown of one job's summary: what its steps appended to GITHUB_STEP_SUMMARY, in order. */
export function jobSummary(job: JobRecord): string {
  return job.steps
    .map((s) => s.summary.trim())
    .filter(Boolean)
    .join('\n\n');
}

export interface PageAnnotation extends RunAnnotation {
  /** The job path (`pipeline/production-plan`) and its display name, as the page names it. */
  job: string;
  jobName: string;
}

/** Every annotation of a run, job by job in the order the jobs finished, each job's in step order. */
export function runAnnotations(run: WorkflowRun, only?: (job: JobRecord) => boolean): PageAnnotation[] {
  return run.jobs
    .filter((job) => !only || only(job))
    .flatMap((job) =>
      job.steps.flatMap((s) =>
        s.annotations.map((a) => ({ ...a, job: job.path, jobName: displayName(job) })),
      ),
    );
}

/** A job inside a reusable workflow as GitHub names it: the calling jobs, then its own name. */
function displayName(job: JobRecord): string {
  return [...job.path.split('/').slice(0, -1), job.name].join(' / ');
}

const ICON = { error: '❌', warning: '⚠️', notice: 'ℹ️' } as const;

/**
 * The Annotations box github.com puts above the job summaries. An annotation is plain text (no
 * Markdown), its line breaks kept; each is one HTML line here, so no blank line inside a message
 * ends the HTML block early and lets the Markdown renderer read the text as Markdown.
 */
export function renderAnnotations(annotations: PageAnnotation[]): string {
  if (annotations.length === 0) return '';
  const counts = (['error', 'warning', 'notice'] as const)
    .map((level) => [level, annotations.filter((a) => a.level === level).length] as const)
    .filter(([, n]) => n > 0)
    .map(([level, n]) => `${n} ${level}${n === 1 ? '' : 's'}`)
    .join(' and ');
  const items = annotations.map((a) => {
    const title = a.properties.title ? `<b>${escapeHtml(a.properties.title)}</b><br>` : '';
    const message = a.message.split('\n').map(escapeHtml).join('<br>');
    return `<div class="gh-annotation gh-${a.level}"><div class="gh-annotation-job">${ICON[a.level]} ${escapeHtml(a.jobName)}</div><div class="gh-annotation-message">${title}${message}</div></div>`;
  });
  return [
    `<section class="gh-annotations"><div class="gh-annotations-head"><b>Annotations</b><br>${counts}</div>`,
    ...items,
    '</section>',
    '',
  ].join('\n');
}

/**
 * A run's summary page as github.com lays it out: the run's annotations first, in one box, then
 * each job that wrote a summary under the heading "<job> summary", in the order the jobs finished
 * (GitHub orders job summaries by completion time; the local runner finishes them in that order).
 * Tests render it; people get screenshots of it.
 */
export function runSummaryPage(run: WorkflowRun, only?: (job: JobRecord) => boolean): string {
  const parts: string[] = [];
  const annotations = renderAnnotations(runAnnotations(run, only));
  if (annotations) parts.push(annotations);
  for (const job of run.jobs) {
    if (only && !only(job)) continue;
    const body = jobSummary(job);
    if (body) parts.push(`## ${job.path} summary`, '', body, '');
  }
  return `${parts.join('\n')}\n`;
}
