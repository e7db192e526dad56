/**
 * `pipeline <command> ...`: finds the command's module and hands it the rest of the arguments.
 * Each command loads only what it needs.
 */
import type { CliIo } from '../tooling/cli/environments.ts';

type Command = () => Promise<(args: string[], io: CliIo) => Promise<number>>;

const COMMANDS: Record<string, Command> = {
  environments: async () => (await import('../tooling/cli/environments.ts')).runEnvironmentsCommand,
  rehearse: async () => (await import('../tooling/cli/rehearse.ts')).runRehearseCommand,
};

const USAGE = `Usage: pipeline <command> [options]

Commands:
  environments   create or update the repository's GitHub environments from a YAML file
  rehearse       run the real pipeline workflows locally on an embedded cluster

Run 'pipeline <command> --help' for a command's options.`;

export async function main(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  const load = name ? COMMANDS[name] : undefined;
  if (!load) {
    if (name === '--help' || name === '-h') {
      io.stdout(`${USAGE}\n`);
      return 0;
    }
    io.stderr(`${name ? `error: unknown command '${name}'\n\n` : ''}${USAGE}\n`);
    return 2;
  }
  return (await load())(rest, io);
}

process.exitCode = await main(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  cwd: process.cwd(),
});
