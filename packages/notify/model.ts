import type { ReleasePlanFacts } from './release-plan.ts';

/** What one `notify` call is about. Engines elsewhere produce these fields; notify only renders them. */

export const NOTIFY_EVENTS = [
  'started',
  'succeeded',
  'failed',
  'rolled-back',
  'awaiting-approval',
  'custom',
] as const;
export type NotifyEventName = (typeof NOTIFY_EVENTS)[number];

export const STAGE_STATES = [
  'pending',
  'running',
  'succeeded',
  'failed',
  'rolled-back',
  'awaiting-approval',
  'skipped',
  'cancelled',
] as const;
export type StageState = (typeof STAGE_STATES)[number];

/** Spellings people (and GitHub's own APIs) use for the same states. */
export const STAGE_STATE_ALIASES: Record<string, StageState> = {
  queued: 'pending',
  waiting: 'awaiting-approval',
  'in-progress': 'running',
  in_progress: 'running',
  deploying: 'running',
  success: 'succeeded',
  passed: 'succeeded',
  failure: 'failed',
  error: 'failed',
  rolled_back: 'rolled-back',
  rollback: 'rolled-back',
  awaiting_approval: 'awaiting-approval',
  approval: 'awaiting-approval',
  canceled: 'cancelled',
};

export interface Stage {
  name: string;
  state: StageState;
}

export interface NotifyEvent {
  event: NotifyEventName;
  app: string;
  environment?: string;
  environmentUrl?: string;
  version?: string;
  /** Free text: the reason for a failure, or the whole message of a custom event. Untrusted. */
  text?: string;
  stages: Stage[];
  /** Slack mention markup, already validated (`<!subteam^S1>`, `<@U1>`, `<!here>`). */
  mentions: string[];
  actor?: string;
  branch?: string;
  sha?: string;
  commitUrl?: string;
  commitTitle?: string;
  runUrl?: string;
  runLabel?: string;
  /** Epoch ms, when this state was reached. */
  at: number;
  /** A link shown with the text (the review of an approval), its URL checked as http(s) when rendered. */
  link?: { url: string; text: string };
  /** Where the image ran before and the commits it brings, for the production plan's summary. */
  plan?: ReleasePlanFacts;
}

const EVENT_STAGE_STATE: Record<NotifyEventName, StageState | undefined> = {
  started: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  'rolled-back': 'rolled-back',
  'awaiting-approval': 'awaiting-approval',
  custom: undefined,
};

export const STATE_EMOJI: Record<StageState, string> = {
  pending: '⚪',
  running: '🔄',
  succeeded: '✅',
  failed: '❌',
  'rolled-back': '↩️',
  'awaiting-approval': '⏸️',
  skipped: '⏭️',
  cancelled: '🚫',
};

export const EVENT_EMOJI: Record<NotifyEventName, string> = {
  started: '🚀',
  succeeded: '✅',
  failed: '❌',
  'rolled-back': '↩️',
  'awaiting-approval': '⏸️',
  custom: 'ℹ️',
};

/** The headline, the same in Slack and in the job summary. */
export function headline(e: NotifyEvent): string {
  const where = e.environment ? ` to ${e.environment}` : '';
  const inEnv = e.environment ? ` in ${e.environment}` : '';
  switch (e.event) {
    case 'started':
      return `Deploying ${e.app}${where}`;
    case 'succeeded':
      return `${e.app} deployed${where}`;
    case 'failed':
      return `${e.app} failed to deploy${where}`;
    case 'rolled-back':
      return `${e.app} rolled back${inEnv}`;
    case 'awaiting-approval':
      return `${e.app} is waiting for approval to deploy${where}`;
    case 'custom':
      return e.environment ? `${e.app} · ${e.environment}` : e.app;
  }
}

/** Mentions go out only when someone has to act. */
export function wantsMentions(e: NotifyEvent): boolean {
  return e.event === 'failed' || e.event === 'rolled-back';
}

/**
 * The stages shown: the given ones, with the event's environment set to the event's state (added
 * at the end when it was not listed).
 */
export function resolveStages(
  given: Stage[],
  environment: string | undefined,
  event: NotifyEventName,
): Stage[] {
  const stages = given.map((s) => ({ ...s }));
  const state = EVENT_STAGE_STATE[event];
  if (environment && state) {
    const existing = stages.find((s) => s.name === environment);
    if (existing) existing.state = state;
    else stages.push({ name: environment, state });
  }
  return stages;
}
