/**
 * The release gate: may this environment change now? Windows, then freezes, then break glass.
 * The answer is a decision people read in the production plan, the summary and Slack: "blocked by
 * window: deny Fri 12:00 - Mon 08:00; next window opens Mon 08:00 CET".
 */

import { formatLocal, isUnrestricted, type Schedule, windowState } from '../core/schedule.ts';
import type { BreakGlassDecision } from './break-glass.ts';
import { activeFreeze, type Freeze } from './freeze.ts';

export type GateState = 'open' | 'blocked' | 'break-glass';

export interface GateDecision {
  state: GateState;
  /** What blocks it (or what break glass overrode): window, freeze, or both. */
  blockedBy: ('window' | 'freeze')[];
  window: {
    open: boolean;
    restricted: boolean;
    reason?: string;
    timezone?: string;
    /** ISO instant of the next opening (closed) or closing (open). */
    nextChange?: string;
    nextChangeText?: string;
  };
  freeze?: Freeze;
  breakGlass?: BreakGlassDecision;
  /** One line for Slack, the summary and the outputs. */
  line: string;
}

export interface GateInput {
  environment: string;
  now: number;
  schedule?: Schedule;
  freezes: Freeze[];
  /** Decided before, when an override was asked for. */
  breakGlass?: BreakGlassDecision;
}

function freezeLine(f: Freeze): string {
  return `frozen by ${f.by} since ${f.at}: ${f.reason}${f.until ? ` (until ${f.until})` : ''}`;
}

export function decide(input: GateInput): GateDecision {
  const { schedule, now } = input;
  const restricted = !!schedule && !isUnrestricted(schedule);
  const w = restricted ? windowState(schedule!, now) : { open: true };
  const window: GateDecision['window'] = {
    open: w.open,
    restricted,
    ...(w.reason ? { reason: w.reason } : {}),
    ...(restricted ? { timezone: schedule!.timezone } : {}),
    ...('nextChange' in w && w.nextChange !== undefined
      ? {
          nextChange: new Date(w.nextChange).toISOString(),
          nextChangeText: formatLocal(w.nextChange, schedule!.timezone, now),
        }
      : {}),
  };
  const freeze = activeFreeze(input.freezes, input.environment, now);
  const blockedBy: GateDecision['blockedBy'] = [];
  if (!w.open) blockedBy.push('window');
  if (freeze) blockedBy.push('freeze');

  const parts: string[] = [];
  if (!w.open)
    parts.push(
      `closed (${w.reason}); ${window.nextChangeText ? `next window opens ${window.nextChangeText}` : 'no window opens within a year'}`,
    );
  if (freeze) parts.push(freezeLine(freeze));
  const env = input.environment;

  if (blockedBy.length === 0) {
    const until = restricted && window.nextChangeText ? ` until ${window.nextChangeText}` : '';
    return {
      state: 'open',
      blockedBy,
      window,
      line: restricted ? `${env}: window open${until}` : `${env}: no deploy window or freeze`,
    };
  }
  const glass = input.breakGlass;
  if (glass?.granted) {
    return {
      state: 'break-glass',
      blockedBy,
      window,
      ...(freeze ? { freeze } : {}),
      breakGlass: glass,
      line: `${env}: BREAK GLASS by ${glass.actor} (${glass.because}): ${glass.reason} — overriding ${parts.join('; ')}`,
    };
  }
  const refused = glass ? `; break glass refused: ${glass.because}` : '';
  return {
    state: 'blocked',
    blockedBy,
    window,
    ...(freeze ? { freeze } : {}),
    ...(glass ? { breakGlass: glass } : {}),
    line: `${env}: blocked by ${blockedBy.join(' and ')}: ${parts.join('; ')}${refused}`,
  };
}
