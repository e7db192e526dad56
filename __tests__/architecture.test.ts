/**
 * The floors of docs/architecture.md, enforced: the table in that document is read here, so the
 * document is the rule and cannot drift from the code.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { REPO_ROOT } from '../tooling/runners/action-runner.ts';

interface Floors {
  floorOf: Map<string, number>;
  sameFloor: Map<string, Set<string>>;
}

/** Reads `| floor | units | may also import on its own floor |` rows. */
function parseFloors(markdown: string): Floors {
  const floorOf = new Map<string, number>();
  const sameFloor = new Map<string, Set<string>>();
  for (const line of markdown.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 5 || !/^\d+$/.test(cells[1] ?? '')) continue;
    const floor = Number(cells[1]);
    const units = (cells[2] ?? '').split(',').map((u) => u.trim());
    const sideways = (cells[3] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    for (const unit of units) {
      floorOf.set(unit, floor);
      sameFloor.set(unit, new Set(sideways));
    }
  }
  return { floorOf, sameFloor };
}

/** The unit of a repository path: `actions`, `packages/<name>`, `tooling/<name>`, or the file. */
function unitOf(path: string): string {
  const parts = path.split('/');
  if (parts[0] === 'actions' || parts[0] === 'bin') return parts[0];
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : path;
}

interface Import {
  from: string;
  to: string;
  specifier: string;
}

/** Static, re-exported and dynamic imports of one source file. */
function importsOf(file: string, source: string): Import[] {
  const found: Import[] = [];
  const pattern = /(?:\bfrom|\bimport)\s*\(?\s*'([^']+)'/g;
  for (const match of source.matchAll(pattern)) {
    const specifier = match[1] ?? '';
    const to = specifier.startsWith('.') ? relative('.', join(dirname(file), specifier)) : specifier;
    found.push({ from: file, to, specifier });
  }
  return found;
}

/** Every import that breaks a rule, as a readable line. */
function violations(imports: Import[], floors: Floors): string[] {
  const out: string[] = [];
  for (const { from, to, specifier } of imports) {
    const source = unitOf(from);
    if (specifier === '@actions/core')
      out.push(`${from} imports @actions/core (the runner's protocol is actions/runtime.ts's own)`);
    if (!specifier.startsWith('.')) continue;
    const target = unitOf(to);
    if (source === target) continue;
    if (source.startsWith('packages/') && (target === 'actions' || target.startsWith('tooling/')))
      out.push(`${from} imports ${to}: shipped engines never import actions/ or tooling/`);
    if (source === 'tooling/kube-sim' && target !== 'packages/core')
      out.push(`${from} imports ${to}: kube-sim imports nothing of ours but packages/core`);
    const a = floors.floorOf.get(source);
    const b = floors.floorOf.get(target);
    if (a === undefined || b === undefined) {
      if (source.startsWith('packages/') && a === undefined) out.push(`${source} is not in the floors table`);
      continue;
    }
    if (b > a) out.push(`${from} imports ${to}: floor ${a} importing floor ${b} (upwards)`);
    else if (b === a && !floors.sameFloor.get(source)?.has(target))
      out.push(`${from} imports ${to}: sideways on floor ${a}, not listed in the table`);
  }
  return [...new Set(out)];
}

const architecture = readFileSync(join(REPO_ROOT, 'docs', 'architecture.md'), 'utf8');
const floors = parseFloors(architecture);

function sourceFiles(): string[] {
  return execFileSync(
    'git',
    ['ls-files', '--cached', '--others', '--exclude-standard', 'actions', 'packages', 'tooling'],
    {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    },
  )
    .split('\n')
    .filter((f) => f.endsWith('.ts'));
}

describe('the floors of docs/architecture.md', () => {
  test('the table names every shipped package and the actions', () => {
    const packages = new Set(
      sourceFiles()
        .filter((f) => f.startsWith('packages/'))
        .map(unitOf),
    );
    for (const unit of packages) expect([unit, floors.floorOf.has(unit)]).toEqual([unit, true]);
    expect(floors.floorOf.get('actions')).toBeGreaterThan(
      Math.max(...[...packages].map((p) => floors.floorOf.get(p) ?? 0)),
    );
  });

  test('no import in actions/, packages/ or tooling/ breaks them', () => {
    const imports = sourceFiles().flatMap((file) =>
      importsOf(file, readFileSync(resolve(REPO_ROOT, file), 'utf8')),
    );
    expect(imports.length).toBeGreaterThan(200);
    expect(violations(imports, floors)).toEqual([]);
  });

  test('the checker itself catches an upward, a sideways, a tooling and an @actions/core import', () => {
    const found = violations(
      [
        { from: 'packages/core/x.ts', to: 'packages/kube/client.ts', specifier: '../kube/client.ts' },
        { from: 'packages/kube/x.ts', to: 'packages/migrate/run.ts', specifier: '../migrate/run.ts' },
        {
          from: 'packages/kube/x.ts',
          to: 'tooling/kube-sim/index.ts',
          specifier: '../../tooling/kube-sim/index.ts',
        },
        { from: 'packages/health/x.ts', to: '@actions/core', specifier: '@actions/core' },
        {
          from: 'tooling/kube-sim/x.ts',
          to: 'packages/kube/client.ts',
          specifier: '../../packages/kube/client.ts',
        },
        { from: 'packages/rollout/x.ts', to: 'packages/kube/client.ts', specifier: '../kube/client.ts' },
      ],
      floors,
    );
    expect(found).toHaveLength(5);
    expect(found.join('\n')).toMatch(/upwards/);
    expect(found.join('\n')).toMatch(/sideways/);
    expect(found.join('\n')).toMatch(/never import actions\/ or tooling/);
    expect(found.join('\n')).toMatch(/the runner's protocol is actions\/runtime.ts's own/);
    expect(found.join('\n')).toMatch(/kube-sim imports nothing of ours/);
  });

  test('multi-line dynamic imports are seen', () => {
    const found = importsOf('actions/x.ts', "const m = await import(\n  '../packages/kube/client.ts'\n);");
    expect(found.map((i) => i.to)).toEqual(['packages/kube/client.ts']);
  });
});
