import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The file commands GitHub's runner gives every step, `uses:` or `run:`: made and read back here
 * once for both local runners. The runner sets them itself, after the step's `env:`, so a step
 * cannot point GITHUB_OUTPUT somewhere else and lose its outputs.
 */
export const FILE_COMMANDS = [
  'GITHUB_OUTPUT',
  'GITHUB_ENV',
  'GITHUB_STATE',
  'GITHUB_PATH',
  'GITHUB_STEP_SUMMARY',
] as const;

export type FileCommandFiles = Record<(typeof FILE_COMMANDS)[number], string>;

const FILE_NAMES: FileCommandFiles = {
  GITHUB_OUTPUT: 'output',
  GITHUB_ENV: 'env',
  GITHUB_STATE: 'state',
  GITHUB_PATH: 'path',
  GITHUB_STEP_SUMMARY: 'summary.md',
};

export interface FileCommandResults {
  outputs: Record<string, string>;
  env: Record<string, string>;
  state: Record<string, string>;
  path: string[];
  summary: string;
}

/** Empty file-command files in `dir`, one per command. */
export function createFileCommands(dir: string): FileCommandFiles {
  const files = Object.fromEntries(FILE_COMMANDS.map((name) => [name, join(dir, FILE_NAMES[name])]));
  for (const file of Object.values(files)) writeFileSync(file, '');
  return files as FileCommandFiles;
}

/** The step's environment with the file commands laid over it: what the caller gave cannot redirect them. */
export function withFileCommands(
  env: Record<string, string>,
  files: FileCommandFiles,
): Record<string, string> {
  return { ...env, ...files };
}

export function readFileCommands(files: FileCommandFiles): FileCommandResults {
  return {
    outputs: parseFileCommand(readFileSync(files.GITHUB_OUTPUT, 'utf8')),
    env: parseFileCommand(readFileSync(files.GITHUB_ENV, 'utf8')),
    state: parseFileCommand(readFileSync(files.GITHUB_STATE, 'utf8')),
    path: readFileSync(files.GITHUB_PATH, 'utf8').split('\n').filter(Boolean),
    summary: readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8'),
  };
}

/** `name=value` and `name<<DELIM ... DELIM` records, as the runner reads GITHUB_OUTPUT and friends. */
export function parseFileCommand(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line) continue;
    const heredoc = line.indexOf('<<');
    const eq = line.indexOf('=');
    if (heredoc > 0 && (eq < 0 || heredoc < eq)) {
      const name = line.slice(0, heredoc);
      const delimiter = line.slice(heredoc + 2);
      const value: string[] = [];
      i++;
      while (i < lines.length && lines[i] !== delimiter) value.push(lines[i++]!);
      if (i >= lines.length) throw new Error(`Unterminated heredoc for '${name}' (delimiter ${delimiter})`);
      out[name] = value.join('\n');
    } else if (eq > 0) {
      out[line.slice(0, eq)] = line.slice(eq + 1);
    } else {
      throw new Error(`Malformed file command line: ${line}`);
    }
  }
  return out;
}
