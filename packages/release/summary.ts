import { codeSpan, escapeMarkdown } from '../core/escape.ts';
import type { GateDecision } from './gate.ts';

const HEADINGS: Record<GateDecision['state'], string> = {
  open: 'open',
  blocked: 'blocked',
  'break-glass': 'BREAK GLASS',
};

/** The gate's part of the job summary: one table a reviewer reads at a glance. */
export function renderGateSummary(d: GateDecision, environment: string, checkpoint: string): string {
  const rows: [string, string][] = [];
  const w = d.window;
  rows.push([
    'window',
    !w.restricted
      ? 'no deploy window set'
      : w.open
        ? `open${w.nextChangeText ? ` until ${w.nextChangeText}` : ''} (${w.timezone})`
        : `closed: ${w.reason}; ${w.nextChangeText ? `next window opens ${w.nextChangeText}` : 'no window opens within a year'}`,
  ]);
  rows.push([
    'freeze',
    d.freeze
      ? `frozen by ${d.freeze.by} since ${d.freeze.at}: ${d.freeze.reason}${d.freeze.until ? ` (until ${d.freeze.until})` : ''} — ${d.freeze.source}`
      : 'none',
  ]);
  if (d.breakGlass)
    rows.push([
      'break glass',
      `${d.breakGlass.granted ? 'granted' : 'refused'} to ${d.breakGlass.actor} (${d.breakGlass.because}): ${d.breakGlass.reason}`,
    ]);
  return [
    `### Release gate: ${escapeMarkdown(environment)} ${HEADINGS[d.state]} (${escapeMarkdown(checkpoint)})`,
    '',
    '| check | state |',
    '|---|---|',
    ...rows.map(([k, v]) => `| ${k} | ${escapeMarkdown(v).replace(/\|/g, '\\|')} |`),
    '',
    d.state === 'blocked' ? `Nothing was changed: ${codeSpan(d.line)}\n` : '',
  ].join('\n');
}
