/**
 * The Role each action's README documents, read from the README itself, so the tests that run an
 * action against a cluster use exactly the permissions a user is told to grant.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { PolicyRule } from './cluster.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The rules of the first ```yaml block in <action>/README.md that holds a `kind: Role`. */
export function readmeRole(action: string): PolicyRule[] {
  const text = readFileSync(join(ROOT, action, 'README.md'), 'utf8');
  for (const m of text.matchAll(/```yaml\n([\s\S]*?)```/g)) {
    const doc = parse(m[1]!) as { kind?: string; rules?: PolicyRule[] } | null;
    if (doc?.kind === 'Role') {
      if (!doc.rules?.length) throw new Error(`${action}/README.md: its Role has no rules`);
      return doc.rules;
    }
  }
  throw new Error(`${action}/README.md documents no Role (a yaml block with kind: Role)`);
}
