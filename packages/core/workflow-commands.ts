/**
 * Workflow commands (`::error file=x::message`) written by hand, for code that runs in a workflow
 * without @actions/core (the CLI). The escaping is the runner's: `%`, `\r` and `\n` in the message;
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
