import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { createFileCommands, readFileCommands, withFileCommands } from './file-commands.ts';

/**
 * The GitHub runner's contract with a JavaScript action, reproduced so a built `dist/` bundle can
 * be run exactly as a workflow step would run it: inputs as INPUT_<NAME> (defaults from
 * action.yml, `${{ }}` defaults evaluated), the file commands (GITHUB_OUTPUT, GITHUB_ENV,
 * GITHUB_STATE, GITHUB_PATH, GITHUB_STEP_SUMMARY), the event payload, the GITHUB_* context, and
 * workflow commands on stdout (annotations, masks, groups). The post step runs with STATE_*.
 */

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ActionDefinition {
  name: string;
  inputs: Record<
    string,
    { description?: string; required?: boolean; default?: string; deprecationMessage?: string }
  >;
  outputs: Record<string, { description?: string }>;
  runs: { using: string; main: string; pre?: string; post?: string; 'post-if'?: string };
}

export function readActionDefinition(actionDir: string): ActionDefinition {
  const file = join(actionDir, 'action.yml');
  const doc = parseYaml(readFileSync(file, 'utf8')) as ActionDefinition;
  return { ...doc, inputs: doc.inputs ?? {}, outputs: doc.outputs ?? {} };
}

export interface Annotation {
  level: 'error' | 'warning' | 'notice' | 'debug';
  message: string;
  properties: Record<string, string>;
}

export interface GitHubContextOptions {
  repository?: string;
  sha?: string;
  ref?: string;
  headRef?: string;
  actor?: string;
  eventName?: string;
  payload?: Record<string, unknown>;
  runId?: string;
  runAttempt?: string;
  workflow?: string;
  job?: string;
  serverUrl?: string;
  apiUrl?: string;
  token?: string;
}

/**
 * The variables GitHub's runner gives every step, `uses:` or `run:`: built here once for both
 * local runners (the action runner and the workflow runner's bash steps), so they cannot drift.
 */
export function stepEnvironment(
  gh: GitHubContextOptions,
  where: { workDir: string; workspace: string; action?: string; actionPath?: string },
): Record<string, string> {
  const repository = gh.repository ?? 'acme/shop';
  const ref = gh.ref ?? 'refs/heads/main';
  const actor = gh.actor ?? 'octocat';
  const apiUrl = gh.apiUrl ?? 'https://api.github.com';
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? where.workDir,
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    RUNNER_OS: 'Linux',
    RUNNER_ARCH: 'X64',
    RUNNER_TEMP: where.workDir,
    RUNNER_DEBUG: process.env.RUNNER_DEBUG ?? '',
    GITHUB_WORKSPACE: where.workspace,
    GITHUB_ACTION: where.action ?? '__run',
    ...(where.actionPath ? { GITHUB_ACTION_PATH: where.actionPath } : {}),
    GITHUB_REPOSITORY: repository,
    GITHUB_REPOSITORY_OWNER: repository.split('/')[0] ?? '',
    GITHUB_SHA: gh.sha ?? 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
    GITHUB_REF: ref,
    GITHUB_REF_NAME: ref.replace(/^refs\/(heads|tags)\//, ''),
    GITHUB_REF_TYPE: ref.startsWith('refs/tags/') ? 'tag' : 'branch',
    GITHUB_HEAD_REF: gh.headRef ?? '',
    GITHUB_BASE_REF: '',
    GITHUB_ACTOR: actor,
    GITHUB_TRIGGERING_ACTOR: actor,
    GITHUB_EVENT_NAME: gh.eventName ?? 'push',
    GITHUB_RUN_ID: gh.runId ?? '4242',
    GITHUB_RUN_NUMBER: '7',
    GITHUB_RUN_ATTEMPT: gh.runAttempt ?? '1',
    GITHUB_WORKFLOW: gh.workflow ?? 'deploy',
    GITHUB_JOB: gh.job ?? 'deploy',
    GITHUB_SERVER_URL: gh.serverUrl ?? 'https://github.com',
    GITHUB_API_URL: apiUrl,
    GITHUB_GRAPHQL_URL: `${apiUrl}/graphql`,
  };
}

export interface RunActionOptions {
  /** `with:` values; a name that action.yml does not declare is an error, as a typo would be. */
  inputs?: Record<string, string>;
  github?: GitHubContextOptions;
  /** Extra environment for the step (`env:`), on top of a clean runner-like environment; the file commands stay the runner's own. */
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
  /** Run the action's `post:` script after main, as the runner does at the end of the job (default true). */
  runPost?: boolean;
  /** Node binary; defaults to the one running this process (Node 24 in this project). */
  node?: string;
  /** Root of the repository holding the action folders and dist/. */
  root?: string;
  onStdout?: (chunk: string) => void;
  /** Sends SIGTERM this long after the step started, as the runner does when a job is cancelled. */
  cancelAfterMs?: number;
  /**
   * Sends SIGTERM once the step's output matches (then after cancelAfterMs, if set), so a test
   * cancels at a known point of the step however slow the machine is.
   */
  cancelWhenOutput?: RegExp;
}

export interface StepResult {
  exitCode: number;
  /** What the process wrote, before masking: tests look here for leaks. */
  stdout: string;
  stderr: string;
  /** The log as the runner shows it: masked values replaced by ***. */
  log: string;
  outputs: Record<string, string>;
  env: Record<string, string>;
  state: Record<string, string>;
  path: string[];
  summary: string;
  annotations: Annotation[];
  masks: string[];
  durationMs: number;
  /** Process start to its first byte of output. */
  firstOutputMs: number | undefined;
  post?: StepResult;
}

function unescapeData(s: string): string {
  return s.replace(/%0D/gi, '\r').replace(/%0A/gi, '\n').replace(/%25/g, '%');
}
function unescapeProperty(s: string): string {
  return unescapeData(s).replace(/%3A/gi, ':').replace(/%2C/gi, ',');
}

/** Reads `::command k=v,k=v::data` lines the way the runner does. */
export function parseWorkflowCommands(stdout: string): { annotations: Annotation[]; masks: string[] } {
  const annotations: Annotation[] = [];
  const masks: string[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    const m = /^::([a-z-]+)(?: ([^:]*))?::(.*)$/.exec(line);
    if (!m) continue;
    const [, command, props = '', data = ''] = m;
    if (command === 'add-mask') {
      masks.push(unescapeData(data));
      continue;
    }
    if (command === 'error' || command === 'warning' || command === 'notice' || command === 'debug') {
      const properties: Record<string, string> = {};
      for (const pair of props.split(',').filter(Boolean)) {
        const eq = pair.indexOf('=');
        if (eq > 0) properties[pair.slice(0, eq).trim()] = unescapeProperty(pair.slice(eq + 1));
      }
      annotations.push({ level: command, message: unescapeData(data), properties });
    }
  }
  return { annotations, masks };
}

export function maskText(text: string, masks: string[]): string {
  let out = text;
  for (const secret of [...masks].sort((a, b) => b.length - a.length))
    if (secret) out = out.split(secret).join('***');
  return out;
}

function evaluateDefault(
  value: string,
  github: Required<Pick<GitHubContextOptions, 'token' | 'repository' | 'sha' | 'ref' | 'actor'>>,
): string {
  return value.replace(/\$\{\{\s*([^}]+?)\s*\}\}/g, (whole, expr: string) => {
    switch (expr) {
      case 'github.token':
        return github.token;
      case 'github.repository':
        return github.repository;
      case 'github.sha':
        return github.sha;
      case 'github.ref':
        return github.ref;
      case 'github.actor':
        return github.actor;
      default:
        throw new Error(`The harness cannot evaluate the default ${whole}`);
    }
  });
}

/** Runs `<root>/<action>/action.yml` as a step; returns everything the runner would have seen. */
export async function runBuiltAction(action: string, options: RunActionOptions = {}): Promise<StepResult> {
  const root = options.root ?? REPO_ROOT;
  const actionDir = join(root, action);
  const definition = readActionDefinition(actionDir);
  if (definition.runs.using !== 'node24')
    throw new Error(`${action}/action.yml runs with ${definition.runs.using}, not node24`);

  const given = options.inputs ?? {};
  for (const name of Object.keys(given)) {
    if (!(name in definition.inputs)) {
      throw new Error(
        `Unexpected input '${name}' for ${action}; valid inputs are ${Object.keys(definition.inputs).join(', ')}`,
      );
    }
  }

  const gh = options.github ?? {};
  const github = {
    repository: gh.repository ?? 'acme/shop',
    sha: gh.sha ?? 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
    ref: gh.ref ?? 'refs/heads/main',
    actor: gh.actor ?? 'octocat',
    token: gh.token ?? 'ghs_harnessTokenValue0123456789',
  };
  const workDir = mkdtempSync(join(tmpdir(), 'pipeline-step-'));
  try {
    const files = createFileCommands(workDir);
    const eventPath = join(workDir, 'event.json');
    writeFileSync(eventPath, JSON.stringify(gh.payload ?? {}));

    const inputEnv: Record<string, string> = {};
    for (const [name, spec] of Object.entries(definition.inputs)) {
      const value =
        given[name] ??
        (spec.default !== undefined ? evaluateDefault(String(spec.default), github) : undefined);
      if (value !== undefined) inputEnv[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
    }

    const baseEnv = withFileCommands(
      {
        ...stepEnvironment(gh, {
          workDir,
          workspace: options.cwd ?? root,
          action: action.replace(/[^a-zA-Z0-9_]/g, '_'),
          actionPath: actionDir,
        }),
        GITHUB_EVENT_PATH: eventPath,
        ...inputEnv,
        ...options.env,
      },
      files,
    );

    const main = resolve(actionDir, definition.runs.main);
    const result = await spawnStep(main, baseEnv, options);
    const stepResult: StepResult = { ...result, ...readFileCommands(files) };
    const { state } = stepResult;
    if (definition.runs.post && options.runPost !== false) {
      writeFileSync(files.GITHUB_STEP_SUMMARY, '');
      const stateEnv = Object.fromEntries(Object.entries(state).map(([k, v]) => [`STATE_${k}`, v]));
      const post = await spawnStep(
        resolve(actionDir, definition.runs.post),
        { ...baseEnv, ...stateEnv },
        options,
      );
      stepResult.post = {
        ...post,
        outputs: {},
        env: {},
        state: {},
        path: [],
        summary: readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8'),
      };
    }
    return stepResult;
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

type SpawnResult = Pick<
  StepResult,
  'exitCode' | 'stdout' | 'stderr' | 'log' | 'annotations' | 'masks' | 'durationMs' | 'firstOutputMs'
>;

function spawnStep(
  script: string,
  env: Record<string, string>,
  options: RunActionOptions,
): Promise<SpawnResult> {
  const node = options.node ?? process.execPath;
  const started = performance.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(node, [script], {
      env,
      cwd: options.cwd ?? options.root ?? REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let firstOutputMs: number | undefined;
    const mark = () => {
      firstOutputMs ??= performance.now() - started;
    };
    let cancelArmed = false;
    const cancelLater = () => setTimeout(() => child.kill('SIGTERM'), options.cancelAfterMs ?? 0);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      mark();
      stdout += chunk;
      options.onStdout?.(chunk);
      if (options.cancelWhenOutput && !cancelArmed && options.cancelWhenOutput.test(stdout)) {
        cancelArmed = true;
        cancelLater();
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      mark();
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    const cancel =
      options.cancelAfterMs !== undefined && !options.cancelWhenOutput ? cancelLater() : undefined;
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (cancel) clearTimeout(cancel);
      const { annotations, masks } = parseWorkflowCommands(stdout);
      resolvePromise({
        exitCode: code ?? (signal ? 128 : 1),
        stdout,
        stderr,
        log: maskText(stdout + stderr, masks),
        annotations,
        masks,
        durationMs: performance.now() - started,
        firstOutputMs,
      });
    });
  });
}

/** Where a secret shows up in what a step left behind, other than the mask command itself. */
export function findLeaks(step: StepResult, secret: string): string[] {
  const places: string[] = [];
  const stdoutWithoutMasks = step.stdout
    .split('\n')
    .filter((l) => !l.startsWith('::add-mask::'))
    .join('\n');
  if (stdoutWithoutMasks.includes(secret)) places.push('stdout');
  if (step.stderr.includes(secret)) places.push('stderr');
  if (step.summary.includes(secret)) places.push('summary');
  for (const [k, v] of Object.entries(step.outputs)) if (v.includes(secret)) places.push(`output ${k}`);
  return places;
}
