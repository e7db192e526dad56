import { type Dirent, existsSync, readdirSync, realpathSync } from 'node:fs';
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

/**
 * Refuses a directory's files that are symlinks resolving outside the workspace (the directory
 * itself was checked with checkInsideWorkspace): a branch could otherwise link a runner file into
 * its migrations and have the plan print it. Only files ending in `ext` are looked at; a broken
 * link is left to the reader, which names it.
 */
export function checkFilesInsideWorkspace(
  dir: string,
  workspace: string,
  inputName: string,
  allowed: boolean,
  ext = '.sql',
): void {
  if (allowed) return;
  let entries: Dirent[];
  try {
    entries = readdirSync(resolve(workspace, dir), { withFileTypes: true });
  } catch {
    return; // a missing directory is the reader's to report
  }
  const root = realish(resolve(workspace));
  for (const e of entries) {
    if (!e.isSymbolicLink() || !e.name.toLowerCase().endsWith(ext)) continue;
    let target: string;
    try {
      target = realpathSync(resolve(workspace, dir, e.name));
    } catch {
      continue;
    }
    if (!inside(target, root))
      throw new InputError(
        inputName,
        `has a file ${JSON.stringify(e.name)} that is a symlink resolving outside the workspace (${workspace})`,
        `files inside the workspace; set ${ALLOW_OUTSIDE_INPUT}: true to read files elsewhere`,
      );
  }
}
