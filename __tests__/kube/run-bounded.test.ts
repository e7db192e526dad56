import { describe, expect, test } from '@jest/globals';
import { runBounded } from '../../packages/kube/manifests.ts';

const limits = { timeoutMs: 10_000, maxRssBytes: 512 * 1024 * 1024, maxOutputBytes: 1024 * 1024 };

describe('runBounded: a child process under a deadline, a memory ceiling and an output ceiling', () => {
  test('returns stdout of a command that stays within its limits', async () => {
    await expect(runBounded('sh', ['-c', 'echo rendered'], limits)).resolves.toBe('rendered\n');
  });

  test('kills a command that runs past its deadline', async () => {
    const started = Date.now();
    await expect(runBounded('sleep', ['30'], { ...limits, timeoutMs: 300 })).rejects.toMatchObject({
      limit: 'it ran longer than 300ms',
    });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  test('kills a command whose resident memory passes the ceiling', async () => {
    const hog = 'const a = []; for (;;) a.push(Buffer.alloc(16 * 1024 * 1024, 1));';
    await expect(
      runBounded(process.execPath, ['-e', hog], { ...limits, maxRssBytes: 128 * 1024 * 1024 }),
    ).rejects.toMatchObject({ limit: expect.stringMatching(/^it used more than 128 MiB of memory/) });
  });

  test('kills a command whose output passes the ceiling', async () => {
    await expect(runBounded('yes', [], { ...limits, maxOutputBytes: 64 * 1024 })).rejects.toMatchObject({
      limit: 'its output passed 64 KiB',
    });
  });

  test('a failing command rejects with its stderr', async () => {
    await expect(runBounded('sh', ['-c', 'echo broken >&2; exit 3'], limits)).rejects.toMatchObject({
      stderr: 'broken\n',
      code: 3,
    });
  });
});
