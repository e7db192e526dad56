import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, test } from '@jest/globals';
import { until } from './helpers.ts';

describe('kube-sim CLI', () => {
  test('prints the kubeconfig path and an export line, serves, and cleans up on Ctrl-C', async () => {
    const child = spawn(
      process.execPath,
      ['tooling/kube-sim/cli.ts', '--time-scale', '10', '--token', 'cli-token'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const path = await until('the export line', () => /^export KUBECONFIG=(.+)$/m.exec(out)?.[1]);
    expect(out).toMatch(/^kubeconfig: .+kubeconfig$/m);
    const kubeconfig = readFileSync(path, 'utf8');
    expect(kubeconfig).toContain('token: cli-token');
    const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]!;
    const res = await fetch(`${url}/api/v1/namespaces`, { headers: { authorization: 'Bearer cli-token' } });
    expect(res.status).toBe(200);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(existsSync(path)).toBe(false);
  });

  test('rejects a malformed --time-scale before starting', async () => {
    const child = spawn(process.execPath, ['tooling/kube-sim/cli.ts', '--time-scale', 'fast'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(2);
    expect(err).toContain('--time-scale has "fast", which is not a positive number');
  });
});
