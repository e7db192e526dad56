import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { LocalGitHub } from '../../tooling/local-services/local-github.ts';
import { runBuiltAction, type StepResult } from '../../tooling/runners/action-runner.ts';

/** release-gate through the built bundle, with the clock fixed by PIPELINE_NOW. */

const TOKEN = 'ghs_releaseGateToken0123456789';
const WINDOWS = `
production:
  timezone: Europe/Berlin
  deny: [Fri 12:00 - Mon 08:00]
  holidays: [2026-12-24]
"*": { timezone: UTC }
`;
const FRIDAY_AFTERNOON = '2026-12-04T14:00:00Z';
const THURSDAY = '2026-12-03T10:00:00Z';
const FREEZE = JSON.stringify({
  environments: ['production'],
  by: 'alice',
  at: '2026-12-01T09:00:00Z',
  reason: 'end-of-year freeze',
});

let github: LocalGitHub;
let workspace: string;
beforeAll(async () => {
  github = await LocalGitHub.start({ tokens: [TOKEN] });
  github.seedTeam('acme', 'sre', 'SRE', ['carol']);
  workspace = mkdtempSync(join(tmpdir(), 'release-gate-'));
});
afterAll(async () => {
  await github.close();
  rmSync(workspace, { recursive: true, force: true });
});

function gate(inputs: Record<string, string>, now: string, actor = 'octocat'): Promise<StepResult> {
  return runBuiltAction('release-gate', {
    inputs: { environment: 'production', app: 'shop', 'github-token': TOKEN, ...inputs },
    github: { apiUrl: github.url, actor, token: TOKEN },
    env: { PIPELINE_NOW: now, GITHUB_WORKSPACE: workspace },
  });
}

const errors = (s: StepResult) => s.annotations.filter((a) => a.level === 'error').map((a) => a.message);

describe('release-gate', () => {
  test('a closed window blocks without failing, says when it opens, and records an inactive deployment', async () => {
    const before = github.deployments.length;
    const step = await gate(
      { windows: WINDOWS, checkpoint: 'before the approval', stages: 'staging=succeeded,production=running' },
      FRIDAY_AFTERNOON,
    );
    expect(step.exitCode).toBe(0);
    expect(step.outputs).toMatchObject({
      state: 'blocked',
      blocked: 'true',
      'blocked-by': 'window',
      'next-window': '2026-12-07T07:00:00.000Z',
      'next-window-text': 'Mon 08:00 CET',
      line: 'production: blocked by window: closed (deny Fri 12:00 - Mon 08:00); next window opens Mon 08:00 CET',
      stages: 'staging=succeeded,production=skipped',
    });
    expect(step.summary).toContain('Release gate: production blocked (before the approval)');
    expect(step.summary).toContain('next window opens Mon 08:00 CET');
    const recorded = github.deployments.slice(before);
    expect(recorded).toHaveLength(1);
    expect(recorded[0]!.environment).toBe('production');
    expect(recorded[0]!.payload).toMatchObject({
      app: 'shop',
      blocked: { by: ['window'], nextWindow: '2026-12-07T07:00:00.000Z' },
    });
    expect(recorded[0]!.statuses.map((s) => [s.state, s.description])).toEqual([
      ['inactive', expect.stringMatching(/^production: blocked by window/)],
    ]);
    expect(step.outputs['deployment-id']).toBe(String(recorded[0]!.id));
  });

  test('an open window and no freeze: open, with until when, and nothing recorded', async () => {
    const before = github.deployments.length;
    const step = await gate({ windows: WINDOWS }, THURSDAY);
    expect(step.outputs).toMatchObject({
      state: 'open',
      blocked: 'false',
      line: 'production: window open until Fri 12:00 CET',
    });
    expect(github.deployments.length).toBe(before);
  });

  test('the "*" schedule covers other environments', async () => {
    const step = await gate({ windows: WINDOWS, environment: 'staging' }, FRIDAY_AFTERNOON);
    expect(step.outputs.state).toBe('open');
  });

  test('windows map keys match environments case-insensitively; a map that names none warns', async () => {
    const upper = await gate(
      { windows: WINDOWS.replace('production:', 'Production:'), 'record-blocked': 'false' },
      FRIDAY_AFTERNOON,
    );
    expect(upper.outputs).toMatchObject({ state: 'blocked', 'next-window-text': 'Mon 08:00 CET' });
    const typo = await gate(
      { windows: 'prodution: { timezone: UTC, deny: [daily 00:00-24:00] }', 'record-blocked': 'false' },
      FRIDAY_AFTERNOON,
    );
    expect(typo.outputs.state).toBe('open');
    expect(typo.annotations.filter((a) => a.level === 'warning').map((a) => a.message)).toEqual([
      'windows names prodution and no "*": nothing limits when production deploys (a typo in an environment name?)',
    ]);
    const twice = await gate(
      { windows: 'production: { timezone: UTC }\nPRODUCTION: { timezone: UTC }' },
      THURSDAY,
    );
    expect(errors(twice)).toEqual([expect.stringContaining('names the environment "PRODUCTION" twice')]);
  });

  test('a freeze from the variable, a pin and a file each block, naming who, when and why', async () => {
    expect((await gate({ freeze: FREEZE }, THURSDAY)).outputs.line).toBe(
      'production: blocked by freeze: frozen by alice since 2026-12-01T09:00:00Z: end-of-year freeze',
    );
    const pin = JSON.stringify({
      environments: ['production'],
      by: 'rollback',
      at: '2026-12-02T09:00:00Z',
      reason: 'returned to deployment 7',
    });
    const pinned = await gate({ pin }, THURSDAY);
    expect(JSON.parse(pinned.outputs.freeze!)).toMatchObject({ by: 'rollback', source: 'vars.PIPELINE_PIN' });
    writeFileSync(
      join(workspace, 'freezes.yml'),
      `freezes:\n  - { environments: "*", by: bob, at: 2026-12-02T00:00:00Z, reason: incident 4711 }\n`,
    );
    const fromFile = await gate({ 'freeze-file': 'freezes.yml', environment: 'staging' }, THURSDAY);
    expect(fromFile.outputs).toMatchObject({ blocked: 'true', 'blocked-by': 'freeze' });
    expect(JSON.parse(fromFile.outputs.freeze!)).toMatchObject({ by: 'bob', source: 'freezes.yml' });
  });

  test('a freeze whose until has passed no longer blocks', async () => {
    const lifted = JSON.stringify({ ...JSON.parse(FREEZE), until: '2026-12-02T00:00:00Z' });
    expect((await gate({ freeze: lifted }, THURSDAY)).outputs.state).toBe('open');
  });

  test('break glass by a member of a listed team is granted and says what it overrode', async () => {
    const step = await gate(
      {
        windows: WINDOWS,
        freeze: FREEZE,
        'break-glass': 'payments are down, hotfix 1.2.4',
        'break-glass-allowed': 'dave, @acme/sre',
      },
      FRIDAY_AFTERNOON,
      'carol',
    );
    expect(step.outputs).toMatchObject({
      state: 'break-glass',
      blocked: 'false',
      'blocked-by': 'window,freeze',
    });
    expect(JSON.parse(step.outputs['break-glass']!)).toEqual({
      actor: 'carol',
      reason: 'payments are down, hotfix 1.2.4',
      because: 'member of @acme/sre',
      overrode: ['window', 'freeze'],
      at: '2026-12-04T14:00:00.000Z',
    });
    expect(step.summary).toContain('BREAK GLASS');
    expect(step.summary).toContain('granted to carol');
  });

  test('break glass by anyone else is refused by name and the deploy stays blocked', async () => {
    const step = await gate(
      {
        windows: WINDOWS,
        'break-glass': 'payments are down, hotfix 1.2.4',
        'break-glass-allowed': 'dave, @acme/sre',
      },
      FRIDAY_AFTERNOON,
      'mallory',
    );
    expect(step.outputs).toMatchObject({ state: 'blocked', blocked: 'true', 'break-glass': '' });
    expect(step.outputs.line).toMatch(
      /break glass refused: mallory is not among those allowed to break glass \(dave, @acme\/sre\)$/,
    );
  });

  test('break glass through a listed team that does not exist is refused and warned about', async () => {
    const warnings = (st: StepResult) =>
      st.annotations.filter((a) => a.level === 'warning').map((a) => a.message);
    const inputs = {
      windows: WINDOWS,
      'break-glass': 'payments are down, hotfix 1.2.4',
      'record-blocked': 'false',
    };
    const typo = await gate({ ...inputs, 'break-glass-allowed': '@acme/srre' }, FRIDAY_AFTERNOON, 'carol');
    expect(typo.outputs).toMatchObject({ state: 'blocked', 'break-glass': '' });
    expect(warnings(typo)).toContainEqual(expect.stringContaining('lists @acme/srre, which does not exist'));
    // A team that exists but does not have the actor: refused, no warning about the team.
    const other = await gate({ ...inputs, 'break-glass-allowed': '@acme/sre' }, FRIDAY_AFTERNOON, 'mallory');
    expect(other.outputs.state).toBe('blocked');
    expect(warnings(other).filter((w) => w.includes('does not exist'))).toEqual([]);
  });

  test('waiting: the window opens while the deploy waits, and it goes ahead', async () => {
    const step = await runBuiltAction('release-gate', {
      inputs: { environment: 'production', windows: WINDOWS, wait: '10m', 'github-token': TOKEN },
      github: { apiUrl: github.url, token: TOKEN },
      // Monday 07:58 CET, two minutes before the window opens; waits run 60 times faster.
      env: { PIPELINE_NOW: '2026-12-07T06:58:00Z', PIPELINE_TIME_SCALE: '60', GITHUB_WORKSPACE: workspace },
    });
    expect(step.outputs).toMatchObject({ state: 'open', blocked: 'false' });
    expect(step.log).toContain('next window opens Mon 08:00 CET; waiting');
    expect(step.log).toContain('production: no longer blocked after waiting');
  });

  test('waiting: a freeze lifted while the deploy waits is seen through the variable, and it goes ahead', async () => {
    const vars = new Map([['PIPELINE_FREEZE', FREEZE]]);
    github.repositoryVariables.set('acme/shop', vars);
    let lifted = false;
    const step = await runBuiltAction('release-gate', {
      inputs: {
        environment: 'production',
        freeze: FREEZE,
        'freeze-variable': 'PIPELINE_FREEZE',
        wait: '1h',
        'github-token': TOKEN,
      },
      github: { apiUrl: github.url, token: TOKEN },
      env: { PIPELINE_NOW: THURSDAY, PIPELINE_TIME_SCALE: '60', GITHUB_WORKSPACE: workspace },
      onStdout: (chunk) => {
        // alice lifts the freeze once the deploy is seen waiting.
        if (!lifted && chunk.includes('; waiting')) {
          lifted = true;
          vars.delete('PIPELINE_FREEZE');
        }
      },
    });
    expect(lifted).toBe(true);
    expect(step.outputs).toMatchObject({ state: 'open', blocked: 'false', freeze: '' });
    expect(step.log).toContain('blocked by freeze: frozen by alice');
  });

  test('pin-token: the pin a rollback left is seen by a job without the environment, and its deletion too', async () => {
    github.seedEnvironment({ owner: 'acme', repo: 'shop', name: 'production' });
    const pinned = await gate(
      { mode: 'pin', reason: 'returned to deployment 1001: c broke checkout' },
      THURSDAY,
      'carol',
    );
    expect(pinned.exitCode).toBe(0);
    // The gate before the approval: no `environment:`, so vars.PIPELINE_PIN is empty there.
    const before = await gate({ 'pin-token': TOKEN, 'record-blocked': 'false' }, THURSDAY);
    expect(before.exitCode).toBe(0);
    expect(before.outputs).toMatchObject({ state: 'blocked', blocked: 'true', 'blocked-by': 'freeze' });
    expect(before.outputs.line).toContain('carol');
    const env = github.environments.find((e) => e.name === 'production')!;
    env.variables.splice(
      env.variables.findIndex((v) => v.name === 'PIPELINE_PIN'),
      1,
    );
    const cleared = await gate({ 'pin-token': TOKEN, 'record-blocked': 'false' }, THURSDAY);
    expect(cleared.outputs).toMatchObject({ state: 'open', blocked: 'false' });
  });

  test('pin: a free-text reason is escaped in the job summary', async () => {
    github.seedEnvironment({ owner: 'acme', repo: 'shop', name: 'staging' });
    const reason = '<!channel> **c broke** <img src=x onerror=alert(1)> [see](https://evil.example)';
    const step = await gate({ mode: 'pin', environment: 'staging', reason }, THURSDAY, 'carol');
    expect(step.exitCode).toBe(0);
    expect(step.summary).toContain('### Pinned: staging');
    for (const raw of ['<!channel>', '<img', '**c broke**', '](https://'])
      expect(step.summary).not.toContain(raw);
    expect(step.summary).toContain('&lt;img');
    // The stored pin keeps the reason as given: it is data, escaped where it is shown.
    const env = github.environments.find((e) => e.name === 'staging')!;
    expect(env.variables.find((v) => v.name === 'PIPELINE_PIN')!.value).toContain(reason);
  });

  test('waiting: a wait that runs out ends blocked', async () => {
    const step = await runBuiltAction('release-gate', {
      inputs: { environment: 'production', windows: WINDOWS, wait: '3m', 'record-blocked': 'false' },
      github: { apiUrl: github.url, token: TOKEN },
      env: { PIPELINE_NOW: FRIDAY_AFTERNOON, PIPELINE_TIME_SCALE: '60', GITHUB_WORKSPACE: workspace },
    });
    expect(step.exitCode).toBe(0);
    expect(step.outputs).toMatchObject({ state: 'blocked', 'next-window-text': 'Mon 08:00 CET' });
    expect(step.log.match(/; waiting \(/g)).toHaveLength(3);
  });

  test.each([
    [{ windows: 'production: { timezone: Mars/Olympus }' }, 'windows', 'is not an IANA time zone'],
    [{ windows: 'deny: [Fri 12 - Mon 8]' }, 'windows', 'is not a rule such as'],
    [
      { freeze: '{"environments":["production"],"at":"2026-12-01T09:00:00Z","reason":"x"}' },
      'freeze',
      'by is required',
    ],
    [{ 'freeze-file': 'missing.yml' }, 'freeze-file', 'which is not a file'],
    [{ 'break-glass-allowed': 'acme/sre' }, 'break-glass-allowed', 'neither a GitHub login nor an @org/team'],
  ])('%j fails with one error naming the input', async (inputs, name, message) => {
    const before = github.deployments.length;
    const step = await gate(inputs as Record<string, string>, THURSDAY);
    expect(step.exitCode).not.toBe(0);
    const errs = errors(step);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toContain(name);
    expect(errs[0]).toContain(message);
    expect(errs[0]).not.toMatch(/' :|like a rule/);
    expect(github.deployments.length).toBe(before);
  });
});
