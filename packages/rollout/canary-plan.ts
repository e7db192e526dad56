import { DURATION_MAX, InputError, parseDuration } from '../core/index.ts';
import type { CanaryMode } from './options.ts';

/**
 * The canary's decisions as pure functions of its inputs and of the state kept in the cluster:
 * which steps a run still has to take, what a verdict means, and what a run that finds a canary
 * in flight (a killed runner's, or another image's) does with it. Driven by unit tests without a
 * cluster; the strategy only carries them out.
 */

export interface CanaryStep {
  weight: number;
  /** Time at this weight; the analysis runs over it (0: `count` rounds). */
  pauseMs: number;
}

/** Stored phases; `promoting` shows as progressing in outputs. */
export type StoredPhase = 'progressing' | 'promoting' | 'promoted' | 'aborted';

const STEPS_FORM =
  'increasing weights from 1 to 100, comma-separated, each with an optional pause: 10,50,100 or 10:5m,50:10m,100';

/** `10,50,100` or `10:5m, 50:10m, 100`: strictly increasing weights from 1 to 100. */
export function parseSteps(text: string, inputName = 'steps'): CanaryStep[] {
  const items = text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new InputError(inputName, 'is empty', STEPS_FORM);
  const steps: CanaryStep[] = [];
  for (const item of items) {
    const m = /^(\d+)\s*%?\s*(?::\s*(\S+))?$/.exec(item);
    if (!m)
      throw new InputError(inputName, `has ${JSON.stringify(item)}, which is not weight[:pause]`, STEPS_FORM);
    const weight = Number(m[1]);
    if (weight < 1 || weight > 100)
      throw new InputError(inputName, `has the weight ${weight}, which is not from 1 to 100`, STEPS_FORM);
    const previous = steps.at(-1);
    if (previous && weight <= previous.weight)
      throw new InputError(
        inputName,
        `has ${weight} after ${previous.weight}; the weights are not increasing`,
        STEPS_FORM,
      );
    steps.push({
      weight,
      pauseMs: m[2] ? parseDuration(m[2], inputName, { maxMs: DURATION_MAX.window }) : 0,
    });
  }
  return steps;
}

/** Replicas for a share of `total`: at least one pod for any weight above 0. */
export function canaryReplicasFor(weight: number, total: number): number {
  if (weight <= 0 || total <= 0) return 0;
  return Math.min(total, Math.max(1, Math.round((total * weight) / 100)));
}

/** What the plan needs of a step already taken (the cluster keeps these). */
export interface TakenStep {
  weight: number;
  verdict: string;
}

export const isInFlight = (phase: StoredPhase | undefined) =>
  phase === 'progressing' || phase === 'promoting';

/**
 * The steps still to take. `run` takes every configured step not passed yet (a resumed run goes
 * on from the first one it did not pass); `set-weight` stops at `weight` (default: the step after
 * the highest passed), adding it as a step of its own when it is not one of the configured ones.
 */
export function stepsToTake(
  mode: 'run' | 'set-weight',
  configured: CanaryStep[],
  taken: TakenStep[],
  weight?: number,
): CanaryStep[] {
  const passed = (w: number) => taken.some((s) => s.weight === w && s.verdict === 'passed');
  if (mode === 'run') return configured.filter((s) => !passed(s.weight));
  const highest = Math.max(0, ...taken.filter((s) => s.verdict === 'passed').map((s) => s.weight));
  const target = weight ?? configured.find((s) => s.weight > highest)?.weight ?? 100;
  const plan = configured.filter((s) => s.weight <= target && !passed(s.weight));
  if (!plan.some((s) => s.weight === target)) plan.push({ weight: target, pauseMs: 0 });
  return plan;
}

/** The 1-based number of a step: its place among the configured ones, else after those taken. */
export function stepNumber(configured: CanaryStep[], weight: number, takenCount: number): number {
  const index = configured.findIndex((s) => s.weight === weight);
  return index >= 0 ? index + 1 : takenCount + 1;
}

/**
 * A step's verdict decides alone: only `passed` goes on. A failed, inconclusive ("no data") or
 * unfinished analysis aborts, since a canary nobody could measure is not shown to be good.
 */
export function afterVerdict(verdict: string): 'next' | 'abort' {
  return verdict === 'passed' ? 'next' : 'abort';
}

/** Why a step ended the canary, as the result and the log say it. */
export function abortReason(step: number, weight: number, verdict: string, reason: string): string {
  return `step ${step} (${weight}%) ${verdict === 'error' ? 'could not finish' : `was ${verdict}`}: ${reason}`;
}

/**
 * What a run or set-weight does with the state it finds under the lock:
 * - `supersede`: another image is in flight; it is aborted and this image starts from the first step;
 * - `promote`: this image's promotion had started (a killed runner): finish it;
 * - `refuse`: set-weight during a promotion;
 * - `continue`: this image is in flight: go on from the steps it has not passed;
 * - `start`: nothing in flight (or it was just superseded): a new canary, unless already up to date.
 */
export type Resumption = 'supersede' | 'promote' | 'refuse' | 'continue' | 'start';
export function resumption(
  mode: 'run' | 'set-weight',
  phase: StoredPhase | undefined,
  storedImage: string | undefined,
  image: string,
): Resumption {
  if (isInFlight(phase) && storedImage !== image) return 'supersede';
  if (phase === 'promoting') return mode === 'set-weight' ? 'refuse' : 'promote';
  return phase === 'progressing' ? 'continue' : 'start';
}

/** After a run's steps: `run` promotes, `set-weight` holds the weight reached. */
export const afterLastStep = (mode: CanaryMode): 'promote' | 'hold' => (mode === 'run' ? 'promote' : 'hold');
