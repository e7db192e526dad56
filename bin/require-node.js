// The one check of the Node version, for every entry point (the pipeline command, npm scripts,
// jest's global setup). Written for any Node: it must run, and say what to do, where the rest
// of the code would fail with a SyntaxError or a missing export.
import { pathToFileURL } from 'node:url';

export const REQUIRED_MAJOR = 24;

export function nodeVersionProblem(version = process.versions.node) {
  const major = Number(version.split('.')[0]);
  if (major >= REQUIRED_MAJOR) return undefined;
  return (
    `pipeline needs Node ${REQUIRED_MAJOR} or newer; this is Node ${version}. ` +
    `Install Node ${REQUIRED_MAJOR} (nvm install ${REQUIRED_MAJOR}, https://nodejs.org, or actions/setup-node with node-version: ${REQUIRED_MAJOR}) and run it again.`
  );
}

/** Prints one line to stderr and exits 1 on an older Node. */
export function requireNode() {
  const problem = nodeVersionProblem();
  if (!problem) return;
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}

// Run as a script (`node bin/require-node.js && ...` in package.json), it checks and exits.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) requireNode();
