import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { parse } from 'yaml';
import { DURATION_MAX, parseDuration } from '../../packages/core/duration.ts';
import { parseSteps } from '../../packages/rollout/canary.ts';
import { REPO_ROOT } from '../../tooling/runners/action-runner.ts';

/**
 * The first job of pipeline.yml and deploy.yml checks durations and canary steps in shell, before
 * anything changes; the actions later parse the same inputs with parseDuration and parseSteps. The
 * shell lines are run here exactly as the workflows hold them, on many generated inputs, and must
 * accept and refuse what the engines accept and refuse, with the same values.
 */

const START = /^# --- the same lines in pipeline\.yml's and deploy\.yml's input checks/m;
const END = /^# --- end of the shared lines ---$/m;

function checkScript(workflow: string): string {
  const doc = parse(readFileSync(join(REPO_ROOT, '.github', 'workflows', workflow), 'utf8')) as {
    jobs: { plan: { steps: { id?: string; run?: string }[] } };
  };
  return doc.jobs.plan.steps.find((s) => s.id === 'check')!.run!;
}

function sharedLines(workflow: string): string {
  const script = checkScript(workflow);
  const start = START.exec(script);
  const end = END.exec(script);
  if (!start || !end) throw new Error(`${workflow}: the shared input-check lines are not marked`);
  return script.slice(start.index, end.index + end[0].length);
}

/** Runs the shared lines once for every value (NUL-separated on stdin), one answer a line. */
function runShared(values: string[], body: string): string[] {
  const script = [
    'errors=0',
    'bad() { errors=$((errors + 1)); }',
    sharedLines('pipeline.yml'),
    `while IFS= read -r -d '' value; do`,
    body,
    'done',
  ].join('\n');
  const r = spawnSync('bash', ['-c', script, 'check'], {
    input: values.map((v) => `${v}\0`).join(''),
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`the shell check failed: ${r.stderr}`);
  const lines = r.stdout.split('\n').slice(0, -1);
  expect(lines).toHaveLength(values.length);
  return lines;
}

const msOf = (values: string[], maxMs: number, minMs = 0) =>
  runShared(values, `  r=$(ms "$value" ${maxMs} ${minMs}) && echo "$r" || echo refused`);

const parsed = (value: string, maxMs: number, minMs = 0) => {
  try {
    return String(parseDuration(value, 'x', { maxMs, ...(minMs ? { minMs } : {}) }));
  } catch {
    return 'refused';
  }
};

const space = fc.constantFrom('', ' ', '\t', '\n', '\r\n', '  \t');
const amount = fc.oneof(
  fc.nat({ max: 200 }).map(String),
  fc.tuple(fc.nat({ max: 99 }), fc.nat({ max: 999_999 })).map(([i, f]) => `${i}.${f}`),
  fc.bigInt({ min: 0n, max: 10n ** 20n }).map(String),
  fc.constantFrom('0', '00', '007', '.5', '1.', '1e3', '-5', ''),
);
const unit = fc.constantFrom('ms', 's', 'm', 'h', 'd', 'ms', 's', 'm', 'M', 'H', 'sec', 'min', '', 'µs');
/** Durations as people write them, and as they mistype them. */
const duration = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(space, fc.array(fc.tuple(amount, unit), { minLength: 1, maxLength: 4 }), space)
      .map(([before, parts, after]) => `${before}${parts.map(([a, u]) => a + u).join('')}${after}`),
  },
  {
    weight: 1,
    arbitrary: fc.string({ unit: fc.constantFrom(...'0123456789.msdh \\nt-+e:'.split('')), maxLength: 40 }),
  },
);

describe("pipeline.yml's and deploy.yml's input checks", () => {
  test('hold the same duration and canary-steps lines', () => {
    expect(sharedLines('deploy.yml')).toBe(sharedLines('pipeline.yml'));
    // Both use them: a copy nothing calls would pass the test above and check nothing.
    for (const workflow of ['pipeline.yml', 'deploy.yml']) {
      const rest = checkScript(workflow).replace(sharedLines(workflow), '');
      expect(rest).toMatch(/\$\(ms "[^"]+" "\$WINDOW"\)/);
      expect(rest).toContain('canary_steps "$CANARY_STEPS"');
    }
  });

  test.each([
    ['a soak or a pause (at most 7d)', DURATION_MAX.window, 0],
    ['a deadline (at most 1d)', DURATION_MAX.timeout, 0],
    ['an interval (at least 100ms, at most 1d)', DURATION_MAX.timeout, 100],
  ])('the shell reads %s as parseDuration does', (_, maxMs, minMs) => {
    fc.assert(
      fc.property(fc.array(duration, { minLength: 100, maxLength: 200 }), (values) => {
        const shell = msOf(values, maxMs, minMs);
        const mismatches = values
          .map((v, i) => ({ value: v, shell: shell[i], parseDuration: parsed(v, maxMs, minMs) }))
          .filter((m) => m.shell !== m.parseDuration);
        expect(mismatches).toEqual([]);
      }),
      { numRuns: 8 },
    );
  });

  test.each([
    ['5m', '300000'],
    ['1h30m', '5400000'],
    ['0.0005s', '1'],
    ['90', '90000'],
    [' 7d ', '604800000'],
    ['7d1ms', 'refused'],
    ['5\\m', 'refused'],
    ['5M', 'refused'],
    ['15 minutes', 'refused'],
    [`${'1'.repeat(33)}`, 'refused'],
  ])('%j is %s ms in the shell and for parseDuration', (value, ms) => {
    expect(msOf([value], DURATION_MAX.window)).toEqual([ms]);
    expect(parsed(value, DURATION_MAX.window)).toBe(ms);
  });

  const stepsOf = (values: string[]) =>
    runShared(
      values,
      '  pauses=0 errors=0; canary_steps "$value"; [ "$errors" -eq 0 ] && echo "$pauses" || echo refused',
    );
  const parsedSteps = (value: string) => {
    try {
      return String(parseSteps(value).reduce((sum, s) => sum + s.pauseMs, 0));
    } catch {
      return 'refused';
    }
  };
  const item = fc
    .tuple(
      fc.oneof(
        fc.integer({ min: 0, max: 120 }).map(String),
        fc.constantFrom('010', '1 0', '99999999999999999999', 'x'),
      ),
      fc.constantFrom('', '%', ' %', ' '),
      fc.option(fc.tuple(fc.constantFrom(':', ' : ', ':'), duration), { nil: undefined }),
    )
    .map(([w, pct, pause]) => `${w}${pct}${pause ? pause[0] + pause[1].replace(/[,\n]/g, '') : ''}`);
  const steps = fc
    .tuple(fc.array(item, { maxLength: 5 }), fc.constantFrom(',', ', ', '\n', ' ,'))
    .map(([items, sep]) => items.join(sep));

  test("the shell reads canary-steps as canary-shift's parseSteps does", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            steps,
            fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 4 }).map((ws) =>
              [...new Set(ws)]
                .sort((a, b) => a - b)
                .map((w, i) => `${w}:${i + 1}m`)
                .join(','),
            ),
          ),
          { minLength: 100, maxLength: 150 },
        ),
        (values) => {
          const shell = stepsOf(values);
          const mismatches = values
            .map((v, i) => ({ value: v, shell: shell[i], parseSteps: parsedSteps(v) }))
            .filter((m) => m.shell !== m.parseSteps);
          expect(mismatches).toEqual([]);
        },
      ),
      { numRuns: 8 },
    );
  });

  test.each([
    ['10:2m,50:5m,100', '420000'],
    ['10, 50 ,100', '0'],
    ['10%:1m\n50%:1m\n100%', '120000'],
    ['50,10', 'refused'],
    ['0,100', 'refused'],
    ['10:8d,100', 'refused'],
    ['', 'refused'],
    ['10:2 min,100', 'refused'],
  ])('canary-steps %j: %s', (value, answer) => {
    expect(stepsOf([value])).toEqual([answer]);
    expect(parsedSteps(value)).toBe(answer);
  });
});
