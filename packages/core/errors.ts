/**
 * Errors whose message is the whole story for the user: the runtime prints them as one `::error::`
 * line without a stack trace. Anything else reaching the top is a bug and keeps its stack.
 */
export class PipelineError extends Error {
  readonly expected = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An action input (or an option of an engine) that is malformed; raised before anything changes. */
export class InputError extends PipelineError {
  readonly input: string;
  readonly problem: string;
  readonly accepted: string;
  constructor(input: string, problem: string, accepted: string) {
    super(`Input '${input}' ${problem}. Accepted: ${accepted}.`);
    this.input = input;
    this.problem = problem;
    this.accepted = accepted;
  }
}

export function isExpectedError(error: unknown): error is PipelineError {
  return error instanceof Error && (error as { expected?: unknown }).expected === true;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
