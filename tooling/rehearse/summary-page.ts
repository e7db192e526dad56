import type { JobRecord, WorkflowRun } from '../runners/workflow-runner.ts';

/** The Markdown of one job's summary: what its steps appended to GITHUB_STEP_SUMMARY, in order. */
export function jobSummary(job: JobRecord): string {
  return job.steps
    .map((s) => s.summary.trim())
    .filter(Boolean)
    .join('\n\n');
}

/**
 * A run's summary page as github.com lays it out: each job that wrote a summary under the heading
 * "<job> summary", in the order the jobs ran. Tests render it; people get screenshots of it.
 */
export function runSummaryPage(run: WorkflowRun, only?: (job: JobRecord) => boolean): string {
  const parts: string[] = [];
  for (const job of run.jobs) {
    if (only && !only(job)) continue;
    const body = jobSummary(job);
    if (body) parts.push(`## ${job.path} summary`, '', body, '');
  }
  return `${parts.join('\n')}\n`;
}
