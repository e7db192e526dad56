// `npm run bench`: lists the benchmarks in bench/ with what each measures.
// `npm run bench -- <name> [args...]` runs one; `npm run bench -- all` runs each in turn.
// Each benchmark is a TypeScript file Node runs as it is; they print figures and assert nothing.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const benches = readdirSync(here)
  .filter((f) => f.endsWith('.ts'))
  .sort()
  .map((f) => ({ name: basename(f, '.ts'), file: join(here, f), about: about(join(here, f)) }));

/** The first sentence of the file's opening comment, without the `node bench/x.ts` usage. */
function about(file) {
  const head = readFileSync(file, 'utf8').match(/^(?:\/\*\*?([\s\S]*?)\*\/|((?:\/\/.*\n)+))/);
  const text = (head?.[1] ?? head?.[2] ?? '')
    .split('\n')
    .map((l) => l.replace(/^\s*(\*|\/\/)\s?/, '').trim())
    .join(' ')
    .replace(/\s*(Run: )?`node bench\/[^`]*`[.:]?\s*/g, ' ')
    .trim();
  const sentence = text.match(/^.*?[.:](\s|$)/)?.[0] ?? text;
  return sentence.replace(/[.:]\s*$/, '').trim();
}

function run(bench, args) {
  process.stdout.write(`\n== ${bench.name}${args.length ? ` ${args.join(' ')}` : ''}\n`);
  const child = spawnSync(process.execPath, [bench.file, ...args], { stdio: 'inherit' });
  if (child.error) throw child.error;
  return child.status ?? 1;
}

const [name, ...args] = process.argv.slice(2);
if (!name || name === '--help' || name === '-h') {
  const width = Math.max(...benches.map((b) => b.name.length));
  process.stdout.write('Benchmarks (npm run bench -- <name> [args], or all):\n');
  for (const b of benches) process.stdout.write(`  ${b.name.padEnd(width)}  ${b.about}\n`);
  process.exit(0);
}
if (name === 'all') {
  let failed = 0;
  for (const b of benches) if (run(b, []) !== 0) failed++;
  process.exit(failed === 0 ? 0 : 1);
}
const bench = benches.find((b) => b.name === name);
if (!bench) {
  process.stderr.write(
    `No benchmark named '${name}'; there are: ${benches.map((b) => b.name).join(', ')}, or all\n`,
  );
  process.exit(2);
}
process.exit(run(bench, args));
