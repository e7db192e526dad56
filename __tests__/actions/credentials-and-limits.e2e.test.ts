import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Marked } from 'marked';
import { closeServer, listenLoopback, readBody } from '../../tooling/local-services/http.ts';
import { findLeaks, runBuiltAction, type StepResult } from '../../tooling/runners/action-runner.ts';

// Regression tests of issue #13 through the built bundle: checks-file in the shipped chunk layout,
// duration maxima, everything derived from a credential, webhooks in clear, version cells.

const errors = (step: StepResult) =>
  step.annotations.filter((a) => a.level === 'error').map((a) => a.message);
const STACK = /\n\s+at .+:\d+:\d+\)?/;

let work: string;
let probe: { server: Server; url: string };
const probeRequests: { url: string; authorization: string }[] = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'hardening-'));
  // Answers every request by reflecting what it was sent: the worst a probed service can do.
  probe = await listenLoopback((req, res) => {
    const authorization = String(req.headers.authorization ?? '');
    probeRequests.push({ url: String(req.url), authorization });
    readBody(req).then(() => {
      if (req.url?.startsWith('/api/v1/query')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            status: 'success',
            data: { resultType: 'vector', result: [{ metric: { seen: authorization }, value: [0, '5'] }] },
          }),
        );
        return;
      }
      res.writeHead(req.url === '/healthy' ? 200 : 401, { 'content-type': 'text/plain' });
      res.end(`you sent Authorization: ${authorization} to ${req.url}`);
    });
  });
});
afterAll(async () => {
  await closeServer(probe.server);
  rmSync(work, { recursive: true, force: true });
});

const gate = (inputs: Record<string, string>) =>
  runBuiltAction('health-gate', { inputs, cwd: work, env: { HOME: '/nonexistent-home' } });

describe('health-gate checks-file in the shipped bundle', () => {
  test('a valid checks file is read and its checks run', async () => {
    writeFileSync(join(work, 'checks.yml'), `- name: api\n  url: ${probe.url}/healthy\n`);
    const step = await gate({ 'checks-file': 'checks.yml', count: '2', interval: '100ms' });
    expect(errors(step)).toEqual([]);
    expect(step.outputs.verdict).toBe('passed');
    expect(JSON.parse(step.outputs.evidence!).checks[0].counts.success).toBe(2);
  });

  test('a checks file that is not YAML is one error naming checks-file', async () => {
    writeFileSync(join(work, 'broken.yml'), '- name: [unclosed\n');
    const step = await gate({ 'checks-file': 'broken.yml' });
    expect(step.exitCode).toBe(1);
    expect(errors(step)).toHaveLength(1);
    expect(errors(step)[0]).toMatch(/^Input 'checks-file' is not valid YAML \(/);
    expect(step.stdout).not.toMatch(STACK);
  });
  test.each([
    ['/dev/zero', 'which is not a regular file'],
    ['.', 'which is not a regular file'],
    ['big.yml', 'which is 1048577 bytes'],
  ])('checks-file %s is refused before it is read', async (file, problem) => {
    writeFileSync(join(work, 'big.yml'), `#${'x'.repeat(1024 * 1024)}`);
    const step = await gate({ 'checks-file': file });
    expect(step.exitCode).toBe(1);
    expect(errors(step)).toEqual([
      `Input 'checks-file' names ${JSON.stringify(file)}, ${problem}. Accepted: a path to a YAML file of checks (at most 1 MiB), relative to the workspace.`,
    ]);
  });
});

describe('durations have documented maxima and never overflow a timer', () => {
  const check = () => `- { name: api, url: "${probe.url}/healthy" }`;

  test.each([
    [
      { duration: '60d', interval: '30d' },
      /^Input '(interval|duration)' has "(30d|60d)", which is longer than/,
    ],
    [{ duration: '60d', interval: '1h' }, /^Input 'duration' has "60d", which is longer than 7d\./],
    [{ timeout: '25d' }, /^Input 'timeout' has "25d", which is longer than 1d\./],
    [{ timeout: `1${'0'.repeat(400)}` }, /^Input 'timeout' has "1000.*\(401 characters\), which is too long/],
    [{ interval: '30d' }, /^Input 'interval' has "30d", which is longer than 1d\./],
  ])('health-gate %j: one clean error, before any probe', async (inputs, message) => {
    const before = probeRequests.length;
    const step = await gate({ checks: check(), ...inputs });
    expect(step.exitCode).toBe(1);
    expect(errors(step)).toHaveLength(1);
    expect(errors(step)[0]).toMatch(message);
    expect(step.stdout + step.stderr).not.toMatch(STACK);
    expect(probeRequests.length).toBe(before);
  });

  test('a 7-day soak at its maximum is accepted (and cancelled here, not ended at once)', async () => {
    const step = await runBuiltAction('health-gate', {
      inputs: { checks: check(), duration: '7d', interval: '24h' },
      cwd: work,
      cancelAfterMs: 2500,
    });
    // The first round ran; the 24h interval sleep was still pending when the step was cancelled.
    expect(errors(step).join('\n')).not.toMatch(/Input '/);
    expect(step.outputs.verdict).not.toBe('passed');
    expect(step.durationMs).toBeGreaterThan(2000);
  });

  test.each([
    ['deploy-env', { environment: 'dev', manifests: 'k8s.yml', timeout: '25d' }, 'timeout'],
    ['run-migrations', { command: 'status', 'lock-timeout': `9${'9'.repeat(399)}s` }, 'lock-timeout'],
    ['canary-shift', { deployment: 'shop', image: 'x:1', steps: '10:60d,100' }, 'steps'],
    ['blue-green-switch', { app: 'shop', 'scale-down-delay': '25d' }, 'scale-down-delay'],
  ] as const)('%s rejects an over-long %j with one error naming the input', async (action, inputs, input) => {
    const step = await runBuiltAction(action, {
      inputs: { ...inputs },
      cwd: work,
      env: { HOME: '/nonexistent-home', KUBECONFIG: '/nonexistent-kubeconfig' },
    });
    expect(step.exitCode).toBe(1);
    expect(errors(step)).toHaveLength(1);
    expect(errors(step)[0]).toMatch(new RegExp(`^Input '${input}' has .*(longer than|too long)`));
    expect(step.stdout + step.stderr).not.toMatch(STACK);
  });
});

describe('credentials derived from inputs never show', () => {
  const USER = 'gate-admin';
  const PASSWORD = 'Pr0m-p@ss/w0rd!';
  const encoded = encodeURIComponent(PASSWORD);
  const basic = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');

  function expectNoLeak(step: StepResult, secrets: string[]) {
    for (const secret of secrets) expect([secret, findLeaks(step, secret)]).toEqual([secret, []]);
  }

  test('prometheus-url user info is sent as Basic auth, and neither it nor its header shows anywhere', async () => {
    const host = new URL(probe.url).host;
    const step = await gate({
      checks: '- { name: rate, type: prometheus, query: "sum(up)", condition: "> 10" }',
      'prometheus-url': `http://${USER}:${encoded}@${host}`,
    });
    expect(errors(step)).toHaveLength(1);
    expect(step.outputs.verdict).toBe('failed');
    expect(probeRequests.at(-1)!.authorization).toBe(`Basic ${basic}`);
    // The series label reflects the Authorization header into the evidence and the summary.
    expect(step.outputs.evidence).toContain('seen=\\"***\\"');
    expectNoLeak(step, [PASSWORD, encoded, basic, `${USER}:${PASSWORD}`, USER]);
    expect(step.masks).toEqual(expect.arrayContaining([PASSWORD, encoded, basic]));
  });

  test('an http check URL with user info is probed with Basic auth; a body that echoes it is redacted', async () => {
    const host = new URL(probe.url).host;
    const step = await gate({
      checks: `- { name: api, url: "http://${USER}:${encoded}@${host}/echo" }`,
    });
    expect(step.exitCode).toBe(1);
    expect(probeRequests.at(-1)!.authorization).toBe(`Basic ${basic}`);
    expect(errors(step)).toHaveLength(1);
    expect(errors(step)[0]).toContain('you sent Authorization: *** to /echo');
    expectNoLeak(step, [PASSWORD, encoded, basic, USER]);
  });

  test('a reflected bearer token of a check header is redacted in log, summary and evidence', async () => {
    const token = 'probe-bearer-0123456789';
    const step = await gate({
      checks: `- { name: api, url: "${probe.url}/echo", headers: { Authorization: "Bearer ${token}" } }`,
    });
    expect(step.exitCode).toBe(1);
    expect(step.summary).toContain('you sent Authorization: \\*\\*\\*');
    // Escaped for Markdown the token reads probe\-bearer\-…: that form must not show either.
    expect(step.summary).not.toContain('probe\\-bearer');
    expectNoLeak(step, [token, `Bearer ${token}`]);
  });
});

describe('notify webhooks', () => {
  test('plain http to another host is refused before anything is sent', async () => {
    const step = await runBuiltAction('notify', {
      inputs: {
        event: 'started',
        'slack-webhook-url': 'http://hooks.example.com/services/T1/B1/hooksecret12345',
      },
    });
    expect(step.exitCode).toBe(1);
    expect(errors(step)).toEqual([
      "Input 'slack-webhook-url' has a plain http URL to hooks.example.com, which would send the webhook in clear. Accepted: an https:// incoming webhook URL (plain http only to localhost or 127.0.0.1).",
    ]);
    expect(findLeaks(step, 'hooksecret12345')).toEqual([]);
  });

  test('slack-api-url over plain http to another host is refused (the bot token would travel in clear)', async () => {
    const step = await runBuiltAction('notify', {
      inputs: {
        event: 'started',
        'slack-token': 'xoxb-clear-text-token',
        channel: 'C1',
        'slack-api-url': 'http://slack.example.com/api/',
      },
    });
    expect(step.exitCode).toBe(1);
    expect(errors(step)).toHaveLength(1);
    expect(errors(step)[0]).toMatch(/^Input 'slack-api-url' has a plain http URL to slack\.example\.com/);
  });

  test('a webhook error body that echoes only the secret path shows nothing of it', async () => {
    const path = '/services/T0ECHO/B0ECHO/echoedwebhooksecret';
    const echo = await listenLoopback((req, res) => {
      readBody(req).then(() => {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end(`no_service: ${req.url}`);
      });
    });
    try {
      const step = await runBuiltAction('notify', {
        inputs: { event: 'started', 'slack-webhook-url': `${echo.url}${path}`, 'fail-on-error': 'true' },
      });
      expect(step.exitCode).toBe(1);
      expect(errors(step)).toHaveLength(1);
      for (const secret of [path, 'echoedwebhooksecret', `${echo.url}${path}`])
        expect([secret, findLeaks(step, secret)]).toEqual([secret, []]);
    } finally {
      await closeServer(echo.server);
    }
  });
});

describe('URLs everyone can read carry no credentials', () => {
  test.each([
    [
      'notify',
      { event: 'started', 'environment-url': 'https://qa:Publ1cPass@shop.example.com/' },
      'environment-url',
    ],
    ['notify', { event: 'started', 'log-url': 'https://bot:Publ1cPass@ci.example.com/run/1' }, 'log-url'],
    [
      'deploy-env',
      {
        environment: 'dev',
        manifests: 'k8s.yml',
        'environment-url': 'https://qa:Publ1cPass@shop.example.com/',
      },
      'environment-url',
    ],
  ] as const)(
    '%s %j is refused before anything is sent, and the password never shows',
    async (action, inputs, input) => {
      const step = await runBuiltAction(action, { inputs: { ...inputs }, cwd: work });
      expect(step.exitCode).toBe(1);
      expect(errors(step)).toEqual([
        expect.stringMatching(
          new RegExp(
            `^Input '${input}' has user info \\(user:password@\\), which GitHub would show to everyone`,
          ),
        ),
      ]);
      expect(findLeaks(step, 'Publ1cPass')).toEqual([]);
    },
  );
});

describe('notify version in the summary table', () => {
  test('a | does not split the cell and no HTML renders from it', async () => {
    const step = await runBuiltAction('notify', {
      inputs: {
        event: 'started',
        app: 'shop',
        version: 'v1.2|<img src=x onerror=alert(1)>|<b>bold</b>',
        summary: 'true',
      },
    });
    expect(step.exitCode).toBe(0);
    const html = new Marked({ gfm: true }).parse(step.summary) as string;
    const row = /<tr>\s*<td><strong>Version<\/strong><\/td>([\s\S]*?)<\/tr>/.exec(html);
    expect(row).not.toBeNull();
    expect(row![1]!.match(/<td>/g)).toHaveLength(1);
    expect(html).not.toMatch(/<img|<b>/);
    expect(row![1]).toContain('v1.2|&lt;img src=x onerror=alert(1)&gt;|&lt;b&gt;bold&lt;/b&gt;');
  });

  test('an image reference stays a code span', async () => {
    const step = await runBuiltAction('notify', {
      inputs: { event: 'started', app: 'shop', version: 'ghcr.io/acme/shop@sha256:abc123' },
    });
    expect(step.summary).toContain('| **Version** | `ghcr.io/acme/shop@sha256:abc123` |');
  });
});
