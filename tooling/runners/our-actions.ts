/** The actions of this suite, as `uses:` names them. */
export const OUR_ACTIONS = [
  'deploy-env',
  'run-migrations',
  'health-gate',
  'canary-shift',
  'blue-green-switch',
  'notify',
  'release-gate',
];

/** Which of our actions a `uses:` names: `./notify`, `./.github/../notify`, or `<owner>/pipeline/notify@v1`. */
export function ourActionOf(uses: string): string | undefined {
  const local = /^\.\/(?:.*\/)?([a-z-]+)\/?$/.exec(uses);
  if (local && OUR_ACTIONS.includes(local[1]!)) return local[1];
  const remote = /^[^/]+\/pipeline\/([a-z-]+)@[\w.\-/]+$/.exec(uses);
  if (remote && OUR_ACTIONS.includes(remote[1]!)) return remote[1];
  return undefined;
}
