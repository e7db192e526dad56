// Escaping lives in core (every floor uses it); the rollout summaries still import it from here
// until they point at core/escape.ts.
export { codeSpan, escapeHtml, escapeMarkdown, escapeMermaidLabel } from '../core/escape.ts';
