import { describe, expect, test } from '@jest/globals';
import {
  escapeMarkdown,
  escapeMermaidLabel,
  escapeSlack,
  escapeSlackPlain,
  slackLink,
} from '../../packages/core/escape.ts';
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

  test('Slack: identifiers stay as written; only marks that could format get a zero-width space', () => {
    // Slack formats _x_, *x* and ~x~ only at word boundaries: inside a word nothing happens.
    for (const word of [
      'missing_column',
      'a_b_c.sql',
      '004_add_order_priority.sql',
      'x*y*z',
      'a~b~c',
      'émoji_ü',
    ])
      expect(escapeSlack(word)).toBe(word);
    expect(escapeSlack('004_add_order_priority.sql failed: column "missing_column" does not exist')).toBe(
      '004_add_order_priority.sql failed: column "missing_column" does not exist',
    );
    // At a boundary the mark is broken, on both sides and next to punctuation.
    expect(escapeSlack('_x_')).toBe('\u200b_x\u200b_');
    expect(escapeSlack('a _x_ b')).toBe('a \u200b_x\u200b_ b');
    expect(escapeSlack('(*bold*)')).toBe('(\u200b*bold\u200b*)');
    // An inner _ can neither open nor close: breaking the outer ones is enough.
    expect(escapeSlack('_private_name and more_')).toBe('\u200b_private_name and more\u200b_');
    expect(escapeSlack('trailing_')).toBe('trailing\u200b_');
    expect(escapeSlack('a__b')).toBe('a\u200b_\u200b_b');
    expect(escapeSlack('a`b`c')).toBe('a\u200b`b\u200b`c');
    // Entities, mentions and links as before.
    expect(escapeSlack('<!here> <@U1> <https://x|y>')).toBe(
      '&lt;!here&gt; &lt;@U1&gt; &lt;https:\u200b//x|y&gt;',
    );
  });

  test('Slack plain text (the fallback beside blocks): entities and a broken ://, no zero-width spaces for formatting', () => {
    expect(escapeSlackPlain('*bold* _x_ missing_column a_b_c.sql ~s~ `c`')).toBe(
      '*bold* _x_ missing_column a_b_c.sql ~s~ `c`',
    );
    expect(escapeSlackPlain('<!channel> & <@U1> <https://x|y>')).toBe(
      '&lt;!channel&gt; &amp; &lt;@U1&gt; &lt;https:\u200b//x|y&gt;',
    );
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

  test("a failure reason reads as the step wrote it, in the blocks and the fallback; the fallback's colon follows the version", () => {
    const reason =
      '004_add_order_priority.sql failed: column "missing_column" does not exist (SQLSTATE 42703) <!channel>';
    const message = renderSlackMessage({ ...base, mentions: [], version: 'v1.2.3', text: reason });
    const escaped =
      '004_add_order_priority.sql failed: column "missing_column" does not exist (SQLSTATE 42703) &lt;!channel&gt;';
    expect(message.text).toBe(`shop failed to deploy to production (v1.2.3): ${escaped}`);
    const section = message.blocks.find((b) => b.type === 'section' && !b.fields) as {
      text: { text: string };
    };
    expect(section.text.text).toBe(escaped);
    expect(JSON.stringify(message)).not.toContain('\u200b');
    expect(renderSlackMessage({ ...base, mentions: [], text: 'it broke' }).text).toBe(
      'shop failed to deploy to production: it broke',
    );
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
