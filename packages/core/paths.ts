import { existsSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { InputError } from './errors.ts';

/** The input that lets a step read files outside the workspace, named in every refusal. */
const ALLOW_OUTSIDE_INPUT = 'allow-paths-outside-workspace';

/** The real path of `path`, or of its nearest existing parent joined with the rest (for paths not made yet). */
function realish(path: string): string {
  let existing = path;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  return resolve(realpathSync(existing), relative(existing, path));
}

function inside(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/**
 * Refuses a path (as given, resolved against the workspace, and with symlinks followed) that
 * leaves the workspace: a branch's input must not read the runner's files. `allowed` is the
 * escape hatch for a workflow that means it.
 */
export function checkInsideWorkspace(
  given: string,
  path: string,
  workspace: string,
  inputName: string,
  allowed: boolean,
): void {
  if (allowed) return;
  const root = realish(resolve(workspace));
  const absolute = resolve(workspace, path);
  const escapes = !inside(absolute, resolve(workspace)) || !inside(realish(absolute), root);
  if (escapes)
    throw new InputError(
      inputName,
      `names ${JSON.stringify(given)}, which ${realish(absolute) !== absolute && inside(absolute, resolve(workspace)) ? 'is a symlink that resolves' : 'is'} outside the workspace (${workspace})`,
      `paths inside the workspace; set ${ALLOW_OUTSIDE_INPUT}: true to read files elsewhere`,
    );
}
