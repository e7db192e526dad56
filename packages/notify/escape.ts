// Escaping lives in core (every floor uses it); the rollout summaries and the rehearsal report still
// import it from here until their owners point them at core/escape.ts.
export { codeSpan, escapeHtml, escapeMarkdown, escapeMermaidLabel } from '../core/escape.ts';
