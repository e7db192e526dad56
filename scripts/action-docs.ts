// The inputs and outputs tables of each action's README are generated from its action.yml, so
// the two never disagree. By default it rewrites the tables; `--check` fails when one has drifted.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, readActionDefinition } from '../tooling/runners/action-runner.ts';

const START = '<!-- action-docs:start (generated from action.yml by `npm run docs`; do not edit) -->';
const END = '<!-- action-docs:end -->';

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ').trim();
}

export function renderActionTables(actionDir: string): string {
  const def = readActionDefinition(actionDir);
  const lines = ['### Inputs', '', '| name | required | default | description |', '|---|---|---|---|'];
  for (const [name, spec] of Object.entries(def.inputs)) {
    const dflt = spec.default === undefined || spec.default === '' ? '' : `\`${cell(String(spec.default))}\``;
    lines.push(
      `| \`${name}\` | ${spec.required ? 'yes' : 'no'} | ${dflt} | ${cell(spec.description ?? '')} |`,
    );
  }
  lines.push('', '### Outputs', '', '| name | description |', '|---|---|');
  for (const [name, spec] of Object.entries(def.outputs))
    lines.push(`| \`${name}\` | ${cell(spec.description ?? '')} |`);
  return `${START}\n${lines.join('\n')}\n${END}`;
}

/** Action folders: root folders holding an action.yml. */
export function actionDirs(root = REPO_ROOT): string[] {
  return readdirSync(root, { withFileTypes: true })
    .filter(
      (d) =>
        d.isDirectory() &&
        !d.name.startsWith('.') &&
        d.name !== 'node_modules' &&
        existsSync(join(root, d.name, 'action.yml')),
    )
    .map((d) => join(root, d.name))
    .sort();
}

/** The README with its generated block replaced; undefined when the README has no block. */
export function updatedReadme(actionDir: string): {
  path: string;
  current: string;
  expected: string | undefined;
} {
  const path = join(actionDir, 'README.md');
  const current = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const start = current.indexOf(START);
  const end = current.indexOf(END);
  if (start < 0 || end < start) return { path, current, expected: undefined };
  return {
    path,
    current,
    expected: current.slice(0, start) + renderActionTables(actionDir) + current.slice(end + END.length),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const mode = process.argv.includes('--check') ? 'check' : 'write';
  let problems = 0;
  for (const dir of actionDirs()) {
    const { path, current, expected } = updatedReadme(dir);
    if (expected === undefined) {
      console.error(`${path}: missing, or without the generated block (${START.slice(0, 30)}… ${END})`);
      problems++;
    } else if (expected !== current) {
      if (mode === 'write') {
        writeFileSync(path, expected);
        console.log(`${path}: tables updated`);
      } else {
        console.error(`${path}: inputs/outputs tables differ from action.yml; run 'npm run docs'`);
        problems++;
      }
    }
  }
  if (problems > 0) process.exit(1);
}
