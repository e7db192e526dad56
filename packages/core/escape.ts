/**
 * Escaping for text we did not write (branch names, commit messages, PR titles, free text that a
 * workflow may have filled from an event). Each target has its own rules.
 */

const ZWSP = '\u200b';

/**
 * Slack mrkdwn: `&`, `<` and `>` are the only characters Slack lets us escape, and escaping them
 * is what stops `<!channel>`, `<@U123>` and `<http://x|label>` from being read as markup. Slack has
 * no escape for `*_~\``, so a zero-width space is put before each one that could open or close
 * formatting; the same goes for `://`, so a bare URL in a commit message is not linked. Slack only
 * formats `*x*`, `_x_` and `~x~` at word boundaries, so a `*`, `_` or `~` between two letters or
 * digits (`missing_column`, `004_add_order_priority.sql`) is left alone and stays copyable and
 * searchable; a backtick always gets one.
 */
export function escapeSlack(text: string): string {
  return escapeSlackPlain(text).replace(/[*_~`]/g, (c, at: number, all: string) =>
    c !== '`' && WORD_CHAR.test(all[at - 1] ?? '') && WORD_CHAR.test(all[at + 1] ?? '') ? c : `${ZWSP}${c}`,
  );
}

const WORD_CHAR = /^[\p{L}\p{N}]$/u;

/**
 * A message's top-level `text` beside its blocks: Slack shows it only where blocks are not shown
 * (mobile notifications use it alone, screen readers read it), as plain text, so formatting
 * characters need nothing. Slack still parses `<…>` there (a `<!channel>` in it notifies the
 * channel), so the entities stay, and `://` is broken as in escapeSlack.
 */
export function escapeSlackPlain(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/:\/\//g, `:${ZWSP}//`);
}

/** A Slack link whose label is untrusted text; a URL with markup characters is not linked at all. */
export function slackLink(url: string | undefined, label: string): string {
  const safeLabel = escapeSlack(label).replace(/\|/g, '¦');
  if (!url || !/^https?:\/\/[^\s<>|]+$/.test(url)) return safeLabel;
  return `<${url.replace(/&/g, '&amp;')}|${safeLabel}>`;
}

/** Slack limits text objects (header 150, section field 2000): cut with an ellipsis. */
export function truncate(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

/**
 * GitHub-flavoured Markdown (job summaries): HTML is rendered there, so `<>&"` become entities;
 * Markdown punctuation is backslash-escaped so nothing becomes a link, image, heading or table
 * cell break; `@` is an entity so no one is mentioned; `://` is broken so no bare URL is linked.
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/[&<>"@\\`*_{}[\]()#+\-.!|~]/g, (c) => MARKDOWN_ESCAPES[c] ?? `\\${c}`)
    .replace(/:\/\//g, ':\\/\\/')
    .replace(/\r?\n/g, ' ');
}

const MARKDOWN_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  '@': '&#64;',
};

/**
 * Untrusted text as a Markdown code span. Nothing is escaped inside a code span (a backslash or an
 * entity would show literally), so the fence is a run of backticks longer than any in the text, and
 * a `|` becomes a look-alike: GFM ends a table cell at `|` even inside a code span.
 */
export function codeSpan(text: string): string {
  const body = text.replace(/\r?\n/g, ' ').replace(/\|/g, '¦');
  const longest = Math.max(0, ...(body.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  const pad = body.startsWith('`') || body.endsWith('`') || /^ .* $/.test(body) ? ' ' : '';
  return `${fence}${pad}${body}${pad}${fence}`;
}

/**
 * A fenced code block of untrusted text: the fence is a run of backticks longer than any inside
 * (three at least), so the text cannot close it; line endings become `\n`.
 */
export function fencedBlock(content: string, language = ''): string {
  const longest = Math.max(2, ...(content.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}${language}\n${content.replace(/\r\n?/g, '\n')}\n${fence}`;
}

/**
 * Text inside raw HTML such as `<summary>`: GFM passes an HTML block through without Markdown, so
 * a backslash escape would show literally; entities are what work there.
 */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/\r?\n/g, ' ');
}

/** Text inside a Mermaid `["..."]` label: quotes and angle brackets as Mermaid entity codes. */
export function escapeMermaidLabel(text: string): string {
  return text
    .replace(/&/g, '#amp;')
    .replace(/"/g, '#quot;')
    .replace(/</g, '#lt;')
    .replace(/>/g, '#gt;')
    .replace(/[\r\n]+/g, ' ');
}
