import { describe, expect, test } from '@jest/globals';
import {
  abortReason,
  afterLastStep,
  afterVerdict,
  parseSteps,
  resumption,
  stepNumber,
  stepsToTake,
} from '../../packages/rollout/canary-plan.ts';

const steps = parseSteps('10:1m,50:2m,100');
const weights = (plan: { weight: number }[]) => plan.map((s) => s.weight);

describe('the canary step plan, without a cluster', () => {
  test('a new run takes every configured step, in order, with its pause', () => {
    expect(stepsToTake('run', steps, [])).toEqual([
      { weight: 10, pauseMs: 60_000 },
      { weight: 50, pauseMs: 120_000 },
      { weight: 100, pauseMs: 0 },
    ]);
  });

  test('a run resumed after a killed runner goes on from the first step it did not pass', () => {
    // The runner died during step 2: its record says error (or is missing); step 1 passed.
    expect(weights(stepsToTake('run', steps, [{ weight: 10, verdict: 'passed' }]))).toEqual([50, 100]);
    expect(
      weights(
        stepsToTake('run', steps, [
          { weight: 10, verdict: 'passed' },
          { weight: 50, verdict: 'error' },
        ]),
      ),
    ).toEqual([50, 100]);
  });

  test('set-weight without a weight goes one step past the highest passed, and stops there', () => {
    expect(weights(stepsToTake('set-weight', steps, []))).toEqual([10]);
    expect(weights(stepsToTake('set-weight', steps, [{ weight: 10, verdict: 'passed' }]))).toEqual([50]);
  });

  test('set-weight to a weight between steps takes the steps below it and then that weight, unpaused', () => {
    expect(stepsToTake('set-weight', steps, [], 30)).toEqual([
      { weight: 10, pauseMs: 60_000 },
      { weight: 30, pauseMs: 0 },
    ]);
    expect(weights(stepsToTake('set-weight', steps, [{ weight: 10, verdict: 'passed' }], 50))).toEqual([50]);
  });

  test('a weight that is not a configured step is numbered after the steps taken', () => {
    expect(stepNumber(steps, 50, 0)).toBe(2);
    expect(stepNumber(steps, 30, 1)).toBe(2);
    expect(stepNumber(steps, 30, 4)).toBe(5);
  });

  test('only a passed analysis goes on: failed, inconclusive and unfinished ones abort', () => {
    expect(afterVerdict('passed')).toBe('next');
    for (const verdict of ['failed', 'inconclusive', 'error']) expect(afterVerdict(verdict)).toBe('abort');
    expect(abortReason(2, 50, 'inconclusive', 'no data for 3 rounds')).toBe(
      'step 2 (50%) was inconclusive: no data for 3 rounds',
    );
    expect(abortReason(1, 10, 'error', 'job cancelled')).toBe('step 1 (10%) could not finish: job cancelled');
  });

  test('what a run does with the canary it finds in the cluster', () => {
    expect(resumption('run', undefined, undefined, 'shop:v2')).toBe('start');
    expect(resumption('run', 'promoted', 'shop:v1', 'shop:v2')).toBe('start');
    expect(resumption('run', 'aborted', 'shop:v2', 'shop:v2')).toBe('start');
    expect(resumption('run', 'progressing', 'shop:v2', 'shop:v2')).toBe('continue');
    expect(resumption('set-weight', 'progressing', 'shop:v2', 'shop:v2')).toBe('continue');
    // Another image in flight, even mid-promotion, is aborted first.
    expect(resumption('run', 'progressing', 'shop:v1', 'shop:v2')).toBe('supersede');
    expect(resumption('run', 'promoting', 'shop:v1', 'shop:v2')).toBe('supersede');
    // A killed runner's promotion of this image is finished; set-weight cannot step back from it.
    expect(resumption('run', 'promoting', 'shop:v2', 'shop:v2')).toBe('promote');
    expect(resumption('set-weight', 'promoting', 'shop:v2', 'shop:v2')).toBe('refuse');
  });

  test('after its last step run promotes and set-weight holds', () => {
    expect(afterLastStep('run')).toBe('promote');
    expect(afterLastStep('set-weight')).toBe('hold');
  });
});
