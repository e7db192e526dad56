/**
 * Break glass: deploy through a closed window or a freeze, because production is on fire. It takes
 * a reason (written down in the deployment, the summary and Slack) and is open only to the users
 * and teams the platform team listed; anyone else is refused by name, and the deploy stays blocked.
 */

export interface BreakGlassRequest {
  reason: string;
  actor: string;
  /** GitHub logins and @org/team slugs allowed to break glass. */
  allowed: string[];
}

export interface BreakGlassDecision {
  granted: boolean;
  actor: string;
  reason: string;
  /** Why granted ("listed user", "member of @acme/sre") or why refused. */
  because: string;
}

/** Whether a user is a member of a team; the GitHub API in an action, a table in a test. */
export type TeamMembership = (org: string, team: string, user: string) => Promise<boolean>;

const MIN_REASON_LENGTH = 10;

export class BreakGlassError extends Error {}

/** Checks the form of the allow list once, before anything else runs. */
export function parseAllowed(entries: string[]): string[] {
  for (const entry of entries) {
    if (
      !/^@[A-Za-z0-9-]+\/[A-Za-z0-9_.-]+$/.test(entry) &&
      !/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/.test(entry)
    )
      throw new BreakGlassError(`${JSON.stringify(entry)} is neither a GitHub login nor an @org/team`);
  }
  return entries;
}

export async function decideBreakGlass(
  request: BreakGlassRequest,
  isMember: TeamMembership,
): Promise<BreakGlassDecision> {
  const { actor } = request;
  const reason = request.reason.trim();
  const refuse = (because: string) => ({ granted: false, actor, reason, because });
  if (reason.length < MIN_REASON_LENGTH)
    return refuse(`break glass needs a reason of at least ${MIN_REASON_LENGTH} characters`);
  if (request.allowed.length === 0)
    return refuse('no one is allowed to break glass here (break-glass-allowed is empty)');
  const login = actor.toLowerCase();
  if (request.allowed.some((a) => !a.startsWith('@') && a.toLowerCase() === login))
    return { granted: true, actor, reason, because: 'listed user' };
  for (const entry of request.allowed.filter((a) => a.startsWith('@'))) {
    const [org, team] = entry.slice(1).split('/') as [string, string];
    if (await isMember(org, team, actor))
      return { granted: true, actor, reason, because: `member of ${entry}` };
  }
  return refuse(`${actor} is not among those allowed to break glass (${request.allowed.join(', ')})`);
}
