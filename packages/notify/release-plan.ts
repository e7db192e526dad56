import { codeSpan, escapeMarkdown } from '../core/escape.ts';
import type { ComparedCommit } from '../github/release-plan.ts';

/**
 * The top of the production plan: where the image ran before and what it brings. Facts come from
 * GitHub (packages/github/release-plan.ts, through the action); this only renders them, so the
 * reviewer reads them on the first screen, above the migrations and the manifest diff.
 */

export interface ProvenanceFacts {
  /** The environment the image should have run in first (staging). */
  environment: string;
  image: string;
  deployment?: {
    id: number;
    sha: string;
    createdAt: string;
    state: string;
    description: string;
    logUrl: string;
    /** The health gate's verdict over the soak window (deploy.yml records it as a status). */
    soak?: { verdict: 'passed' | 'failed' | 'inconclusive'; description: string };
  };
}

/** A commit as the compare API gave it (packages/github/release-plan.ts). */
export type CommitFacts = ComparedCommit;

export interface CommitsFacts {
  /** The environment whose last successful release is the base (production). */
  environment: string;
  head: string;
  /** Undefined for a first release: nothing to compare with. */
  base?: { sha: string; deploymentId: number; createdAt: string };
  total?: number;
  commits: CommitFacts[];
  compareUrl?: string;
  /** A comparison GitHub could not make (a base no longer in the history, say), in words. */
  problem?: string;
}

export interface ReleasePlanFacts {
  provenance?: ProvenanceFacts;
  commits?: CommitsFacts;
  /** `https://github.com/owner/repo`, for pull request links. */
  repositoryUrl?: string;
}

/** Commits listed on the page; the rest are behind the compare link, so the plan stays one screen. */
const COMMITS_SHOWN = 15;

const short = (sha: string) => sha.slice(0, 7);

function link(url: string | undefined, label: string): string {
  return url && /^https?:\/\/[^\s()<>]+$/.test(url) ? `[${label}](${url})` : label;
}

export type ProvenanceVerdict =
  | 'healthy'
  | 'unhealthy'
  | 'inconclusive'
  | 'unsoaked'
  | 'unfinished'
  | 'never';

/**
 * A verdict a reviewer can act on. A finished rollout alone is not a healthy release: only a
 * health gate that passed over the soak window is. A failed or inconclusive gate, or none, warns.
 */
export function provenanceVerdict(p: ProvenanceFacts): ProvenanceVerdict {
  const d = p.deployment;
  if (!d) return 'never';
  // The gate's verdict first: the job's own failure status after it says less.
  if (d.soak?.verdict === 'failed') return 'unhealthy';
  if (d.soak?.verdict === 'inconclusive') return 'inconclusive';
  if (d.state === 'failure' || d.state === 'error') return 'unhealthy';
  if (d.state !== 'success') return 'unfinished';
  return d.soak ? 'healthy' : 'unsoaked';
}

/** The soak's verdict, rounds and window without the checks: what a one-line message has room for. */
const soakHead = (soak: { description: string }) => soak.description.split(';')[0]!;

/** One line for the approval message and the step's output. */
export function provenanceLine(p: ProvenanceFacts): string {
  const d = p.deployment;
  const soak = d?.soak ? `, ${soakHead(d.soak)}` : '';
  switch (provenanceVerdict(p)) {
    case 'never':
      return `${p.environment} never ran this image`;
    case 'healthy':
      return `${p.environment} ran it healthy (deployment ${d!.id}${soak})`;
    case 'unhealthy':
      return `${p.environment} ran it and it FAILED there (deployment ${d!.id}${soak || `: ${d!.state}`})`;
    case 'inconclusive':
      return `${p.environment} ran it but its health gate was INCONCLUSIVE (deployment ${d!.id}${soak})`;
    case 'unsoaked':
      return `${p.environment} ran it without a health gate verdict (deployment ${d!.id}: ${d!.state})`;
    default:
      return `${p.environment} has not finished with it (deployment ${d!.id}: ${d!.state})`;
  }
}

function renderProvenance(p: ProvenanceFacts): string[] {
  const env = escapeMarkdown(p.environment);
  const d = p.deployment;
  const verdict = provenanceVerdict(p);
  if (!d)
    return [
      '> [!WARNING]',
      `> **${env} never ran this image.** No GitHub deployment of ${env} records the digest ${codeSpan(p.image.slice(p.image.lastIndexOf('@') + 1))}: production would get something ${env} never ran.`,
    ];
  const day = d.createdAt.replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC');
  // Our own ISO rendering needs no escapes (they would only add backslashes to read past).
  const when = d.createdAt ? ` on ${/^[\d: -]+UTC$/.test(day) ? day : escapeMarkdown(day)}` : '';
  // The gate's own words when it recorded them; the deployment's last status otherwise.
  const evidence = d.soak
    ? escapeMarkdown(d.soak.description.replace(/^health gate \w+(: )?/, ''))
    : `last status ${codeSpan(d.state)}${d.description ? `: ${escapeMarkdown(d.description)}` : ''}`;
  const facts = `deployment ${link(d.logUrl, String(d.id))} of commit ${codeSpan(short(d.sha))}${when}`;
  const gate = d.soak ? `, health gate **${d.soak.verdict}**: ${evidence}` : `, ${evidence}`;
  switch (verdict) {
    case 'healthy':
      return [`✅ **${env} ran this image healthy**: ${facts}${gate}.`];
    case 'unsoaked':
      return [
        '> [!WARNING]',
        `> **${env} ran this image without a health gate verdict**: ${facts}${gate}. The rollout finished, but no soak checks judged it.`,
      ];
    case 'unhealthy':
      return ['> [!CAUTION]', `> **${env} ran this image and it failed there**: ${facts}${gate}.`];
    case 'inconclusive':
      return [
        '> [!CAUTION]',
        `> **${env}'s health gate was inconclusive for this image** (no evidence it is healthy): ${facts}${gate}.`,
      ];
    default:
      return [
        '> [!CAUTION]',
        `> **${env} has not finished with this image** (no verdict yet): ${facts}${gate}.`,
      ];
  }
}

function authorOf(c: CommitFacts): string {
  // A login as code: `@name` would mention the person on every render.
  return c.authorIsLogin ? codeSpan(c.author) : escapeMarkdown(c.author);
}

function renderCommits(c: CommitsFacts, repositoryUrl: string | undefined): string[] {
  const env = escapeMarkdown(c.environment);
  const problem = c.problem ? [`> [!WARNING]`, `> ${escapeMarkdown(c.problem)}`, ''] : [];
  if (c.problem && c.commits.length === 0)
    return [`⚠️ **Commits since ${env}'s last release: not known.**`, '', ...problem];
  if (!c.base)
    return [`🆕 **First release to ${env}**: no earlier successful ${env} deployment to compare with.`];
  const total = c.total ?? c.commits.length;
  const range = link(c.compareUrl, `${codeSpan(short(c.base.sha))}…${codeSpan(short(c.head))}`);
  const head = `**${total} commit${total === 1 ? '' : 's'} since ${env}'s last release** (deployment ${c.base.deploymentId}, ${range}):`;
  if (total === 0)
    return [
      `**No new commits since ${env}'s last release** (${range}): the same code, perhaps a new configuration.`,
    ];
  const lines = c.commits.slice(-COMMITS_SHOWN).map((commit) => {
    const prs = commit.pullRequests.map((n) =>
      repositoryUrl ? link(`${repositoryUrl}/pull/${n}`, `#${n}`) : `#${n}`,
    );
    return `- ${link(commit.url, codeSpan(short(commit.sha)))} ${escapeMarkdown(commit.title)} — ${authorOf(commit)}${prs.length ? ` · ${prs.join(' ')}` : ''}`;
  });
  const hidden = total - lines.length;
  if (hidden > 0)
    lines.unshift(
      `- … ${hidden} older commit${hidden === 1 ? '' : 's'}: ${link(c.compareUrl, 'the whole comparison')}`,
    );
  return [...problem, head, '', ...lines];
}

/** Provenance, then commits: the Markdown between the release facts and the stage diagram. */
export function renderReleasePlan(plan: ReleasePlanFacts): string {
  const out: string[] = [];
  if (plan.provenance) out.push(...renderProvenance(plan.provenance), '');
  if (plan.commits) out.push(...renderCommits(plan.commits, plan.repositoryUrl), '');
  return out.join('\n');
}
