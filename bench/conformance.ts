/**
 * The differential conformance suite's time on each kind: `node bench/conformance.ts`. Runs
 * __tests__/conformance once per kind on its own (CONFORMANCE_KINDS), then both together as CI
 * does, and prints the wall time of each run and the start and case times the suite reports.
 * Figures only.
 */
import { spawn } from 'node:child_process';
import { clusterKinds } from '../tooling/cluster.ts';

interface Run {
  label: string;
  wallMs: number;
  lines: string[];
  passed: string;
}

function runSuite(label: string, env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(
      process.execPath,
      [
        '--experimental-vm-modules',
        '--disable-warning=ExperimentalWarning',
        'node_modules/jest/bin/jest.js',
        '--verbose',
        '__tests__/conformance',
      ],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (out += c));
    child.on('error', reject);
    child.on('close', (code) => {
      // The figures, and the name of any case that failed (a figure from a failing run is suspect).
      const lines = out
        .split('\n')
        .filter((l) => /conformance \S+: |✕/.test(l))
        .map((l) => l.trim());
      const passed = /Tests:\s+(.*)/.exec(out)?.[1] ?? `exit ${code}`;
      resolve({ label, wallMs: performance.now() - started, lines, passed });
    });
  });
}

const kinds = clusterKinds();
const runs: Run[] = [];
for (const kind of kinds) runs.push(await runSuite(kind, { CONFORMANCE_KINDS: kind }));
if (kinds.length > 1) runs.push(await runSuite(`${kinds.join(' + ')} (differential)`, {}));
for (const r of runs) {
  console.log(`${r.label.padEnd(30)} ${(r.wallMs / 1000).toFixed(1).padStart(6)} s wall   ${r.passed}`);
  for (const l of r.lines) console.log(`    ${l}`);
}
