// Cold start of each built action: process start to its first line of output, against a bare
// `node -e ''` (start to exit) and `node -e 'console.log(1)'` (start to first output); plus the
// size of dist/. Run: `node bench/cold-start.ts [runs]`.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { actionDirs } from '../scripts/action-docs.ts';
import { REPO_ROOT } from '../tooling/runners/action-runner.ts';

const runs = Number(process.argv[2] ?? 15);

function firstOutput(args: string[], env: Record<string, string>): Promise<{ first: number; exit: number }> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let first: number | undefined;
    const mark = () => {
      first ??= performance.now() - start;
    };
    child.stdout.on('data', mark);
    child.stderr.on('data', mark);
    child.on('error', reject);
    child.on('close', () => {
      const exit = performance.now() - start;
      resolve({ first: first ?? exit, exit });
    });
  });
}

function stats(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return `median ${at(0.5).toFixed(1)} ms, p90 ${at(0.9).toFixed(1)} ms`;
}

async function measure(
  label: string,
  args: string[],
  env: Record<string, string>,
  pick: 'first' | 'exit',
): Promise<number> {
  await firstOutput(args, env); // warm the file cache; every measured run is still a new process
  const values: number[] = [];
  for (let i = 0; i < runs; i++) values.push((await firstOutput(args, env))[pick]);
  console.log(`${label.padEnd(44)} ${stats(values)}`);
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

console.log(`node ${process.version}, ${runs} runs each\n`);
const bare = await measure("node -e '' (start to exit)", ['-e', ''], {}, 'exit');
const bareOut = await measure(
  "node -e 'console.log(1)' (start to output)",
  ['-e', 'console.log(1)'],
  {},
  'first',
);
for (const dir of actionDirs()) {
  const name = dir.split('/').pop()!;
  // No inputs at all: the action loads its whole bundle, validates, and prints its first line
  // (the ::error:: for the first required input), which is exactly the cold-start path.
  const median = await measure(
    `${name} (start to first output line)`,
    [join(REPO_ROOT, 'dist', `${name}.js`)],
    { GITHUB_ACTIONS: 'true' },
    'first',
  );
  console.log(
    `${''.padEnd(44)} +${(median - bareOut).toFixed(1)} ms over node printing a line, ${(median / bare).toFixed(2)}x bare node`,
  );
}

let total = 0;
let files = 0;
const walk = (dir: string) => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path);
    else {
      total += statSync(path).size;
      files++;
    }
  }
};
walk(join(REPO_ROOT, 'dist'));
console.log(`\ndist/: ${(total / 1024).toFixed(1)} KiB in ${files} files`);
