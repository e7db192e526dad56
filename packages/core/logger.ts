/** What engines log through; the action layer backs it with the runner's workflow commands (actions/runtime.ts), tests with memory. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  group<T>(title: string, body: () => Promise<T>): Promise<T>;
  /** Registers a secret so that no later output shows it. Call before anything can log it. */
  mask(secret: string): void;
}

export interface LogRecord {
  level: 'debug' | 'info' | 'warning' | 'error' | 'group';
  message: string;
}

/** Records everything, and redacts masked values the way the GitHub runner does. */
export class MemoryLogger implements Logger {
  readonly records: LogRecord[] = [];
  private readonly secrets = new Set<string>();

  private push(level: LogRecord['level'], message: string): void {
    this.records.push({ level, message: redact(message, this.secrets) });
  }
  debug(message: string): void {
    this.push('debug', message);
  }
  info(message: string): void {
    this.push('info', message);
  }
  warning(message: string): void {
    this.push('warning', message);
  }
  error(message: string): void {
    this.push('error', message);
  }
  async group<T>(title: string, body: () => Promise<T>): Promise<T> {
    this.push('group', title);
    return body();
  }
  mask(secret: string): void {
    if (secret) this.secrets.add(secret);
  }
  text(): string {
    return this.records.map((r) => `${r.level}: ${r.message}`).join('\n');
  }
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warning() {},
  error() {},
  group: (_title, body) => body(),
  mask() {},
};

export function redact(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const secret of secrets) if (secret) out = out.split(secret).join('***');
  return out;
}
