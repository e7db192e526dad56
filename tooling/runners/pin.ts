/**
 * Release pinning of the reusable workflows. GitHub gives a called workflow no way to name its
 * own ref, and `uses:` must be a literal, so the release rewrites them: every `uses:` of this
 * suite's actions (or of its other reusable workflows) is pointed at the publishing repository and
 * an exact commit. A caller of `pipeline.yml@v1.4.2` then runs deploy.yml and the actions of that
 * same release, and a fork's release calls the fork.
 */

const OURS =
  /^(\s*(?:-\s+)?uses:\s*)([^/\s]+\/pipeline)\/((?:\.github\/workflows\/[\w.-]+\.ya?ml)|[a-z-]+)@([\w.\-/]+)(\s*(?:#.*)?)$/;

export interface PinChange {
  line: number;
  from: string;
  to: string;
}

/**
 * Rewrites our `uses:` lines: actions to `<repository>/<action>@<actionsRef>`, reusable workflows
 * to `<repository>/.github/workflows/<file>@<workflowsRef>` (left alone when no workflowsRef is
 * given, for the first of the two release commits).
 */
export function pinUses(
  text: string,
  pin: { repository: string; actionsRef: string; workflowsRef?: string },
): { text: string; changes: PinChange[] } {
  const changes: PinChange[] = [];
  const lines = text.split('\n').map((line, index) => {
    const m = OURS.exec(line);
    if (!m) return line;
    const [, lead, , path, , tail] = m as unknown as [string, string, string, string, string, string];
    const isWorkflow = path.startsWith('.github/');
    const ref = isWorkflow ? pin.workflowsRef : pin.actionsRef;
    if (!ref) return line;
    const next = `${lead}${pin.repository}/${path}@${ref}${tail}`;
    if (next !== line) changes.push({ line: index + 1, from: line.trim(), to: next.trim() });
    return next;
  });
  return { text: lines.join('\n'), changes };
}

/** Our `uses:` lines still not pinned to a full commit SHA. */
export function unpinnedUses(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => {
      const m = OURS.exec(line);
      return m !== null && !/^[0-9a-f]{40}$/.test(m[4]!);
    })
    .map((line) => line.trim());
}
