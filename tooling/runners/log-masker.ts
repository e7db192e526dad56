import { maskText, parseWorkflowCommands } from './action-runner.ts';

/**
 * A step's raw output made fit to show a person, as the runner's log view does: `::add-mask::`
 * lines are taken as masks and never shown, every other line has every mask seen so far replaced
 * by ***. Output arrives in chunks that can split a line (or a mask command) anywhere, so lines
 * are cut per stream and only whole lines are shown.
 */
export class LogMasker {
  private readonly masks = new Set<string>();
  private readonly partial = new Map<string, string>();

  constructor(secrets: Iterable<string> = []) {
    for (const secret of secrets) this.addMask(secret);
  }

  addMask(secret: string): void {
    if (secret) this.masks.add(secret);
  }

  /** Text with every mask known so far replaced. */
  redact(text: string): string {
    return maskText(text, [...this.masks]);
  }

  /** Feeds a chunk of one stream; returns the whole lines it completed, masked. */
  push(stream: string, chunk: string): string[] {
    const text = (this.partial.get(stream) ?? '') + chunk;
    const lines = text.split(/\r?\n/);
    this.partial.set(stream, lines.pop() ?? '');
    return this.take(lines);
  }

  /** The stream's last line without a newline, when the stream has ended. */
  flush(stream: string): string[] {
    const rest = this.partial.get(stream) ?? '';
    this.partial.delete(stream);
    return rest ? this.take([rest]) : [];
  }

  private take(lines: string[]): string[] {
    const out: string[] = [];
    for (const line of lines) {
      if (line.startsWith('::add-mask::')) {
        for (const mask of parseWorkflowCommands(line).masks) this.addMask(mask);
        continue;
      }
      out.push(this.redact(line));
    }
    return out;
  }
}
