const REQUIRED_MAJOR=24;function nodeVersionProblem(version = process.versions.node) {
  const major = Number(version.split('.')[0]);
  if (major >= REQUIRED_MAJOR) return undefined;
  return (
    `pipeline needs Node ${REQUIRED_MAJOR} or newer; this is Node ${version}. ` +
    `Install Node ${REQUIRED_MAJOR} (nvm install ${REQUIRED_MAJOR}, https://nodejs.org, or actions/setup-node with node-version: ${REQUIRED_MAJOR}) and run it again.`
  );
}
const problem=nodeVersionProblem();if(problem){process.stdout.write(`::error::${problem}\n`);process.exit(1)}await import('./main/release-gate.js');
