import { randomUUID } from 'node:crypto';

/**
 * The runner's protocol, written by hand: workflow commands (`::error file=x::message`) on stdout
 * and file-command records (GITHUB_OUTPUT, GITHUB_ENV), for the actions (actions/runtime.ts) and
 * the CLI. The escaping is the runner's: `%`, `\r` and `\n` in the message;
 * those and `:` and `,` in property values. A message left unescaped could end the command early
 * and start a forged one on the next line (`\n::add-mask::` or `\r::error::`).
 */
function escapeCommandData(text: string): string {
  return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function escapeCommandProperty(text: string): string {
  return escapeCommandData(text).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

/** One workflow command line, newline included. */
export function workflowCommand(
  command: string,
  message: string,
  properties: Record<string, string | undefined> = {},
): string {
  const props = Object.entries(properties)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${escapeCommandProperty(v!)}`)
    .join(',');
  return `::${command}${props ? ` ${props}` : ''}::${escapeCommandData(message)}\n`;
}

/**
 * One record of a file command (GITHUB_OUTPUT, GITHUB_ENV), newline included: `name<<delimiter`,
 * the value, the delimiter, with a random delimiter the value cannot contain, as the runner reads it.
 */
export function fileCommandRecord(name: string, value: string): string {
  const delimiter = `ghadelimiter_${randomUUID()}`;
  // A UUID in a value is vanishingly unlikely; refusing it keeps a forged record impossible.
  if (name.includes(delimiter) || value.includes(delimiter))
    throw new Error(`The value of ${name} contains the file-command delimiter`);
  return `${name}<<${delimiter}\n${value}\n${delimiter}\n`;
}
