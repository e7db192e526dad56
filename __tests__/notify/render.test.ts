import { describe, expect, test } from '@jest/globals';
import { escapeMarkdown, escapeMermaidLabel, escapeSlack, slackLink } from '../../packages/core/escape.ts';
import {
  type NotifyEvent,
  renderNotifySummary,
  renderSlackMessage,
  resolveStages,
} from '../../packages/notify/index.ts';
import { validateBlocks } from '../../tooling/local-services/local-slack.ts';

const base: NotifyEvent = {
  event: 'failed',
  app: 'shop',
  environment: 'production',
  stages: [],
  mentions: ['<!here>'],
  at: Date.UTC(2026, 10, 26, 12),
};

describe('escaping untrusted text', () => {
  test('Slack: control characters become entities, formatting and URLs are broken', () => {
    expect(escapeSlack('<!channel> & <@U1>')).toBe('&lt;!channel&gt; &amp; &lt;@U1&gt;');
    expect(escapeSlack('*bold* _it_ ~s~ `c`')).toBe(
      '\u200b*bold\u200b* \u200b_it\u200b_ \u200b~s\u200b~ \u200b`c\u200b`',
    );
    expect(escapeSlack('see https://evil.example')).toBe('see https:\u200b//evil.example');
  });

  test('Slack links: an unsafe URL is not linked, and the label cannot close the link', () => {
    expect(slackLink('https://ok.example/a?b=1&c=2', 'x|y>')).toBe(
      '<https://ok.example/a?b=1&amp;c=2|x¦y&gt;>',
    );
    expect(slackLink('javascript:alert(1)', 'label')).toBe('label');
    expect(slackLink('https://x.example/<!channel>', 'label')).toBe('label');
  });

  test('Markdown: no HTML, links, images, headings, table breaks or mentions', () => {
    expect(escapeMarkdown('<img src=x> [a](http://e) ![i](u) # h | @team')).toBe(
      '&lt;img src=x&gt; \\[a\\]\\(http:\\/\\/e\\) \\!\\[i\\]\\(u\\) \\# h \\| &#64;team',
    );
  });

  test('Mermaid labels cannot close the label or the node', () => {
    expect(escapeMermaidLabel('a"] --> b["<x>')).toBe('a#quot;] --#gt; b[#quot;#lt;x#gt;');
  });
});

describe('rendering', () => {
  test('very long untrusted text is cut to Slack limits, so Slack never rejects the message', () => {
    const huge = 'x'.repeat(10_000);
    const message = renderSlackMessage({
      ...base,
      app: huge,
      text: huge,
      version: huge,
      commitTitle: huge,
      sha: 'a'.repeat(40),
      branch: huge,
    });
    expect(validateBlocks(message.blocks)).toEqual([]);
    expect(message.text.length).toBeLessThanOrEqual(3000);
  });

  test('the event environment takes the event state; other stages keep theirs', () => {
    expect(
      resolveStages(
        [
          { name: 'dev', state: 'succeeded' },
          { name: 'production', state: 'pending' },
        ],
        'production',
        'rolled-back',
      ),
    ).toEqual([
      { name: 'dev', state: 'succeeded' },
      { name: 'production', state: 'rolled-back' },
    ]);
    expect(resolveStages([], 'staging', 'custom')).toEqual([]);
    expect(resolveStages([], 'staging', 'started')).toEqual([{ name: 'staging', state: 'running' }]);
  });

  test('the summary has no Mermaid block when there are no stages', () => {
    expect(
      renderNotifySummary({ ...base, environment: undefined, event: 'custom', text: 'hello' }),
    ).not.toContain('mermaid');
  });
});
