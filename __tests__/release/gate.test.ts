import { describe, expect, test } from '@jest/globals';
import { parseSchedule } from '../../packages/core/schedule.ts';
import { decideBreakGlass, parseAllowed } from '../../packages/release/break-glass.ts';
import { activeFreeze, parseFreezes } from '../../packages/release/freeze.ts';
import { decide } from '../../packages/release/gate.ts';
import {
  checkSchema,
  pickKnownGood,
  type RecordedDeployment,
  releaseOf,
} from '../../packages/release/known-good.ts';

const at = (iso: string) => Date.parse(iso);
const weekend = parseSchedule({ timezone: 'Europe/Berlin', deny: ['Fri 12:00 - Mon 08:00'] });
const FRIDAY_AFTERNOON = at('2026-12-04T14:00:00Z');

describe('freezes', () => {
  const text = `
- environments: [production]
  by: alice
  at: 2026-12-01T09:00:00Z
  reason: end-of-year freeze
  until: 2027-01-04T08:00:00+01:00
- environments: "*"
  by: bob
  at: 2026-12-10T09:00:00Z
  reason: incident 4711
`;
  test('a freeze holds its environments from when it was set until it lifts', () => {
    const freezes = parseFreezes(text, 'vars.PIPELINE_FREEZE');
    expect(activeFreeze(freezes, 'production', at('2026-12-02T00:00:00Z'))?.by).toBe('alice');
    expect(activeFreeze(freezes, 'staging', at('2026-12-02T00:00:00Z'))).toBeUndefined();
    expect(activeFreeze(freezes, 'staging', at('2026-12-11T00:00:00Z'))?.by).toBe('bob');
    expect(activeFreeze(freezes, 'production', at('2027-01-04T07:00:00Z'))?.by).toBe('bob');
    expect(activeFreeze(freezes.slice(0, 1), 'production', at('2027-01-04T07:00:00Z'))).toBeUndefined();
  });
  test('environment names are compared as GitHub does, case-insensitively', () => {
    const freezes = parseFreezes(
      '{"environments":["Production"],"by":"a","at":"2026-12-01T09:00:00Z","reason":"r"}',
      'v',
    );
    expect(activeFreeze(freezes, 'production', at('2026-12-02T00:00:00Z'))?.by).toBe('a');
    expect(activeFreeze(freezes, 'PRODUCTION', at('2026-12-02T00:00:00Z'))?.by).toBe('a');
    expect(activeFreeze(freezes, 'staging', at('2026-12-02T00:00:00Z'))).toBeUndefined();
  });
  test('one freeze as JSON, a file with freezes:, and empty text for none', () => {
    expect(
      parseFreezes('{"environment":"production","by":"a","at":"2026-12-01T09:00:00Z","reason":"r"}', 'v'),
    ).toHaveLength(1);
    expect(parseFreezes('freezes: []', 'f')).toEqual([]);
    expect(parseFreezes('  ', 'v')).toEqual([]);
  });
  test.each([
    ['environments: [production]\nat: 2026-12-01T09:00:00Z\nreason: r', 'by is required'],
    [
      'environments: [production]\nby: a\nat: yesterday\nreason: r',
      'at is "yesterday", not an ISO 8601 time',
    ],
    ['by: a\nat: 2026-12-01T09:00:00Z\nreason: r', 'environments must name environments'],
    ['[1, 2]', 'is not a mapping'],
  ])('%j is refused: %s', (bad, message) => {
    expect(() => parseFreezes(bad, 'vars.PIPELINE_FREEZE')).toThrow(message);
  });
});

describe('break glass', () => {
  const members = async (org: string, team: string, user: string) =>
    org === 'acme' && team === 'sre' && user === 'carol';
  const allowed = parseAllowed(['dave', '@acme/sre']);
  test('granted to a listed user and to a member of a listed team', async () => {
    expect(
      await decideBreakGlass({ reason: 'payments are down, hotfix 1.2.4', actor: 'Dave', allowed }, members),
    ).toMatchObject({
      granted: true,
      because: 'listed user',
    });
    expect(
      await decideBreakGlass({ reason: 'payments are down, hotfix 1.2.4', actor: 'carol', allowed }, members),
    ).toMatchObject({
      granted: true,
      because: 'member of @acme/sre',
    });
  });
  test('refused to anyone else, and without a real reason', async () => {
    expect(
      await decideBreakGlass(
        { reason: 'payments are down, hotfix 1.2.4', actor: 'mallory', allowed },
        members,
      ),
    ).toMatchObject({
      granted: false,
      because: 'mallory is not among those allowed to break glass (dave, @acme/sre)',
    });
    expect((await decideBreakGlass({ reason: 'urgent', actor: 'dave', allowed }, members)).because).toMatch(
      /at least 10 characters/,
    );
    expect(
      (await decideBreakGlass({ reason: 'payments are down', actor: 'dave', allowed: [] }, members)).granted,
    ).toBe(false);
  });
  test('the allow list is checked for its form', () => {
    expect(() => parseAllowed(['acme/sre'])).toThrow('neither a GitHub login nor an @org/team');
  });
});

describe('the gate', () => {
  const freeze = parseFreezes(
    '{"environments":["production"],"by":"alice","at":"2026-12-01T09:00:00Z","reason":"end-of-year freeze"}',
    'vars.PIPELINE_FREEZE',
  );
  test('closed window: blocked, with when it opens again', () => {
    const d = decide({ environment: 'production', now: FRIDAY_AFTERNOON, schedule: weekend, freezes: [] });
    expect(d).toMatchObject({ state: 'blocked', blockedBy: ['window'] });
    expect(d.line).toBe(
      'production: blocked by window: closed (deny Fri 12:00 - Mon 08:00); next window opens Mon 08:00 CET',
    );
  });
  test('open window says until when', () => {
    const d = decide({
      environment: 'production',
      now: at('2026-12-03T10:00:00Z'),
      schedule: weekend,
      freezes: [],
    });
    expect(d).toMatchObject({ state: 'open', line: 'production: window open until Fri 12:00 CET' });
  });
  test('a freeze blocks even an open window, naming who, when and why', () => {
    const d = decide({
      environment: 'production',
      now: at('2026-12-03T10:00:00Z'),
      schedule: weekend,
      freezes: freeze,
    });
    expect(d.line).toBe(
      'production: blocked by freeze: frozen by alice since 2026-12-01T09:00:00Z: end-of-year freeze',
    );
  });
  test('break glass overrides both and says what it overrode', () => {
    const d = decide({
      environment: 'production',
      now: FRIDAY_AFTERNOON,
      schedule: weekend,
      freezes: freeze,
      breakGlass: { granted: true, actor: 'dave', reason: 'payments down', because: 'listed user' },
    });
    expect(d).toMatchObject({ state: 'break-glass', blockedBy: ['window', 'freeze'] });
    expect(d.line).toMatch(
      /^production: BREAK GLASS by dave \(listed user\): payments down — overriding closed/,
    );
  });
  test('a refused break glass stays blocked and says why', () => {
    const d = decide({
      environment: 'production',
      now: FRIDAY_AFTERNOON,
      schedule: weekend,
      freezes: [],
      breakGlass: {
        granted: false,
        actor: 'mallory',
        reason: 'x',
        because: 'mallory is not among those allowed',
      },
    });
    expect(d.state).toBe('blocked');
    expect(d.line).toMatch(/; break glass refused: mallory is not among those allowed$/);
  });
});

const D = (
  id: number,
  state: string,
  digit: string,
  extra: Record<string, unknown> = {},
): RecordedDeployment => ({
  id,
  sha: digit.repeat(40),
  environment: 'production',
  createdAt: `2026-12-0${id % 10}T10:00:00Z`,
  state,
  payload: {
    app: 'shop',
    images: { shop: `ghcr.io/acme/shop@sha256:${digit.repeat(64)}` },
    configHash: `c${digit}`,
    migrationsVersion: '2',
    ...extra,
  },
});

describe('known-good release', () => {
  test('previous: the newest good release before the one running, skipping failures and reruns of the same', () => {
    const list = [
      D(1, 'inactive', 'a'),
      D(2, 'failure', 'b'),
      D(3, 'inactive', 'c'),
      D(4, 'success', 'd'),
      D(5, 'inactive', 'd'),
    ];
    expect(pickKnownGood(list, 'shop', 'production', 'previous').id).toBe(3);
  });
  test('a named deployment must have succeeded and be pinned by digest', () => {
    const list = [D(1, 'failure', 'a'), D(2, 'success', 'b', { images: { shop: 'ghcr.io/acme/shop:v2' } })];
    expect(() => pickKnownGood(list, 'shop', 'production', 1)).toThrow('ended failure, not success');
    expect(() => pickKnownGood(list, 'shop', 'production', 2)).toThrow('not pinned by digest');
    expect(() => pickKnownGood(list, 'shop', 'production', 9)).toThrow(
      'is not a deployment of shop to production',
    );
  });
  test('a blocked deploy is never a release: the live one is the newest successful real deploy', () => {
    // As the gate records a blocked deploy: inactive, payload.app and blocked, no images.
    const blocked: RecordedDeployment = {
      ...D(4, 'inactive', 'x'),
      payload: { app: 'shop', blocked: { by: ['window'], line: 'production: outside its window' } },
    };
    const list = [D(1, 'inactive', 'a'), D(2, 'inactive', 'b'), D(3, 'success', 'c'), blocked];
    expect(pickKnownGood(list, 'shop', 'production', 'previous').id).toBe(2);
    // Marked blocked but carrying images (a payload written by hand): still not a release.
    const marked = { ...D(5, 'inactive', 'e'), payload: { ...D(5, 'inactive', 'e').payload, blocked: true } };
    expect(pickKnownGood([...list, marked], 'shop', 'production', 'previous').id).toBe(2);
    expect(() => pickKnownGood(list, 'shop', 'production', 4)).toThrow('the release gate blocked');
  });
  test('a second rollback goes further back, not forward to the release just left', () => {
    // a, b, c went out; c broke and was rolled back to b (deployment 4 records rollback.to 2).
    const list = [
      D(1, 'inactive', 'a'),
      D(2, 'inactive', 'b'),
      D(3, 'inactive', 'c'),
      D(4, 'success', 'b', { rollback: { to: 2, reason: 'c broke', by: 'carol' } }),
    ];
    expect(pickKnownGood(list, 'shop', 'production', 'previous').id).toBe(1);
    // Only b and c on record: nothing to go back to, rather than c again.
    expect(() => pickKnownGood(list.slice(1), 'shop', 'production', 'previous')).toThrow(
      'no successful release of shop before deployment 2',
    );
    // A new release after the rollback: going back returns to b, never to the abandoned c.
    expect(pickKnownGood([...list, D(5, 'success', 'd')], 'shop', 'production', 'previous').id).toBe(2);
  });
  test('nothing before the live release', () => {
    expect(() => pickKnownGood([D(1, 'success', 'a')], 'shop', 'production', 'previous')).toThrow(
      'no successful release of shop before deployment 1',
    );
  });
  test('the schema: behind or equal is fine, ahead needs down migrations asked for', () => {
    const release = releaseOf(D(1, 'success', 'a'));
    expect(checkSchema(release, '2', false)).toMatchObject({ ok: true });
    expect(checkSchema(release, '1', false)).toMatchObject({
      ok: true,
      upTo: '2',
      line: expect.stringMatching(/migrations up to 2 are applied first/),
    });
    expect(checkSchema(release, '2', false).upTo).toBeUndefined();
    expect(checkSchema(release, '3', false)).toMatchObject({
      ok: false,
      line: expect.stringMatching(/past 2 that the release knew/),
    });
    expect(checkSchema(release, '3', true)).toMatchObject({ ok: true, downTo: '2' });
    expect(checkSchema(releaseOf(D(1, 'success', 'a', { migrationsVersion: undefined })), '3', true).ok).toBe(
      false,
    );
  });
});
