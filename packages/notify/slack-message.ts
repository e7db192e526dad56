import { escapeSlack, escapeSlackPlain, slackLink, truncate } from '../core/escape.ts';
import { EVENT_EMOJI, headline, type NotifyEvent, STATE_EMOJI, wantsMentions } from './model.ts';

/** A Block Kit block as we build it: plain objects, checked against Slack's limits by the tests. */
export type SlackBlock = Record<string, unknown>;

export interface SlackMessage {
  /** Notification and accessibility text; Slack shows it where blocks cannot be shown. */
  text: string;
  blocks: SlackBlock[];
}

const mrkdwn = (text: string) => ({ type: 'mrkdwn', text });

function shortSha(sha: string | undefined): string | undefined {
  return sha ? sha.slice(0, 7) : undefined;
}

/** The one living message of a release: rendered again on every event and updated in place. */
export function renderSlackMessage(e: NotifyEvent): SlackMessage {
  const title = headline(e);
  const mentions = wantsMentions(e) ? e.mentions.join(' ') : '';
  const blocks: SlackBlock[] = [
    {
      type: 'header',
      text: { type: 'plain_text', text: truncate(`${EVENT_EMOJI[e.event]} ${title}`, 150), emoji: true },
    },
  ];

  // The link is markup we write (`<url|text>`, the URL checked as http(s), the text escaped),
  // never text a workflow passed: escaping that would break its `://`.
  const review = e.link ? slackLink(e.link.url, e.link.text) : '';
  const lead = [mentions, e.text ? escapeSlack(e.text) : '', review].filter(Boolean).join(' ');
  if (lead) blocks.push({ type: 'section', text: mrkdwn(truncate(lead, 3000)) });

  const fields: string[] = [];
  if (e.environment) fields.push(`*Environment*\n${slackLink(e.environmentUrl, e.environment)}`);
  if (e.version) fields.push(`*Version*\n${escapeSlack(e.version)}`);
  if (e.actor) fields.push(`*Actor*\n${escapeSlack(e.actor)}`);
  if (e.branch) fields.push(`*Branch*\n${escapeSlack(e.branch)}`);
  if (e.sha) {
    const title = e.commitTitle ? ` ${escapeSlack(e.commitTitle)}` : '';
    fields.push(`*Commit*\n${slackLink(e.commitUrl, shortSha(e.sha)!)}${title}`);
  }
  if (e.runUrl) fields.push(`*Run*\n${slackLink(e.runUrl, e.runLabel || 'workflow run')}`);
  if (fields.length > 0)
    blocks.push({ type: 'section', fields: fields.slice(0, 10).map((f) => mrkdwn(truncate(f, 2000))) });

  if (e.stages.length > 0) {
    const line = e.stages.map((s) => `${STATE_EMOJI[s.state]} ${escapeSlack(s.name)}`).join('  →  ');
    blocks.push({ type: 'context', elements: [mrkdwn(truncate(line, 3000))] });
  }

  const buttons: SlackBlock[] = [];
  if (e.runUrl)
    buttons.push({
      type: 'button',
      text: { type: 'plain_text', text: 'View run' },
      url: e.runUrl,
      action_id: 'view-run',
    });
  if (e.environmentUrl) {
    buttons.push({
      type: 'button',
      text: { type: 'plain_text', text: 'Open environment' },
      url: e.environmentUrl,
      action_id: 'open-environment',
    });
  }
  if (buttons.length > 0) blocks.push({ type: 'actions', elements: buttons });

  const epoch = Math.floor(e.at / 1000);
  const iso = new Date(e.at).toISOString();
  blocks.push({
    type: 'context',
    elements: [mrkdwn(`Updated <!date^${epoch}^{date_short_pretty} {time_secs}|${iso}>`)],
  });

  // The fallback is plain text (escapeSlackPlain); the colon follows the title or version directly.
  const headlineText = `${escapeSlackPlain(title)}${e.version ? ` (${escapeSlackPlain(e.version)})` : ''}`;
  const text = [mentions, `${headlineText}${e.text ? `: ${escapeSlackPlain(e.text)}` : ''}`, review]
    .filter(Boolean)
    .join(' ');
  return { text: truncate(text, 3000), blocks };
}

/** The short line posted in the thread under the living message, so its history stays readable. */
export function renderThreadReply(e: NotifyEvent): string {
  const parts = [`${EVENT_EMOJI[e.event]} ${escapeSlack(headline(e))}`];
  if (e.version) parts.push(escapeSlack(e.version));
  const mentions = wantsMentions(e) ? e.mentions.join(' ') : '';
  const review = e.link ? ` ${slackLink(e.link.url, e.link.text)}` : '';
  const body = e.text || review ? `\n${e.text ? escapeSlack(e.text) : ''}${review}`.replace('\n ', '\n') : '';
  return truncate(`${mentions ? `${mentions} ` : ''}${parts.join(' · ')}${body}`, 3000);
}
