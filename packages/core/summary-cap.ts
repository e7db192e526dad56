import { readFile, writeFile } from 'node:fs/promises';

/** GitHub drops a step's whole summary, not just the excess, once the step's file passes 1 MiB. */
export const STEP_SUMMARY_LIMIT_BYTES = 1024 * 1024;

/** What a capped summary keeps: the limit less room for the note and the closing tags. */
const BUDGET_BYTES = STEP_SUMMARY_LIMIT_BYTES - 4 * 1024;

/**
 * Cuts Markdown to fit a byte budget at a line boundary, then closes what the cut left open (a code
 * fence, `<details>` blocks) so the rest of the page still renders, and says what was left out.
 */
export function capMarkdown(markdown: string, budgetBytes = BUDGET_BYTES): string {
  const total = Buffer.byteLength(markdown);
  if (total <= budgetBytes) return markdown;
  let kept = Buffer.from(markdown).subarray(0, budgetBytes).toString('utf8');
  // A cut in the middle of a multi-byte character leaves U+FFFD; a cut mid-line leaves half a row.
  kept = kept.slice(0, Math.max(0, kept.lastIndexOf('\n')));
  const closing: string[] = [];
  let fence: string | undefined;
  for (const line of kept.split('\n')) {
    const m = /^\s{0,3}(`{3,}|~{3,})/.exec(line);
    if (!m) continue;
    if (!fence) fence = m[1];
    else if (m[1]!.startsWith(fence) && line.trim() === m[1]) fence = undefined;
  }
  if (fence) closing.push(fence);
  const open = (kept.match(/<details[\s>]/g) ?? []).length - (kept.match(/<\/details>/g) ?? []).length;
  for (let i = 0; i < open; i++) closing.push('', '</details>');
  const left = total - Buffer.byteLength(kept);
  closing.push(
    '',
    `> ⚠️ **This summary was cut**: ${left.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} bytes are left out, because GitHub drops a step summary over 1 MiB. The step's outputs and log have the rest.`,
    '',
  );
  return `${kept}\n${closing.join('\n')}`;
}

/**
 * Keeps a step's summary file under GitHub's limit after a write: every writer of the step appends
 * to the same file, so the cap is on the file, not on one piece of Markdown.
 */
export async function capStepSummaryFile(path: string | undefined): Promise<void> {
  if (!path) return;
  let content: string;
  try {
    content = await readFile(path, 'utf8');
  } catch {
    return;
  }
  if (Buffer.byteLength(content) <= BUDGET_BYTES) return;
  await writeFile(path, capMarkdown(content));
}
