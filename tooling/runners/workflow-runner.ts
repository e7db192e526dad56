import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  convertWorkflowTemplate,
  NoOperationTraceWriter,
  parseWorkflow,
  type WorkflowTemplate,
} from '@actions/workflow-parser';
import { parse as parseYaml } from 'yaml';
import {
  type Annotation,
  type GitHubContextOptions,
  maskText,
  parseWorkflowCommands,
  runBuiltAction,
  type StepResult,
  stepEnvironment,
} from './action-runner.ts';
import { asText, type Contexts, interpolate, type StatusFunctions, truthy } from './expressions.ts';
import { createFileCommands, readFileCommands, withFileCommands } from './file-commands.ts';
import { ourActionOf } from './our-actions.ts';
import { tokenValue } from './tokens.ts';

/**
 * Runs real workflow files locally the way GitHub would for the parts a deploy pipeline uses:
 * jobs in `needs` order with `if:` (success(), failure(), always()), job and step outputs,
 * reusable workflows with inputs, secrets and outputs, environments with required reviewers, our
 * actions run from their built bundles through the runner contract, and `run:` steps in bash.
 * Any other `uses:` is reported as skipped, by name.
 */

type Job = WorkflowTemplate['jobs'][number];
type Step = Extract<Job, { type: 'job' }>['steps'][number];

export type Conclusion = 'success' | 'failure' | 'skipped' | 'cancelled';

export interface StepRecord {
  id: string;
  name: string;
  kind: 'action' | 'run' | 'skipped-action';
  uses?: string;
  conclusion: Conclusion;
  outcome: Conclusion;
  outputs: Record<string, string>;
  summary: string;
  /**
   * The error, warning and notice annotations the step made, as GitHub keeps them: masked, each
   * message cut to 4096 characters, at most 10 of each level per step (the runner drops the rest).
   */
  annotations: RunAnnotation[];
  log: string;
  durationMs: number;
  error?: string;
}

export type RunAnnotation = Omit<Annotation, 'level'> & { level: 'error' | 'warning' | 'notice' };

/** actions/runner's ExecutionContext: _maxIssueMessageLength and _maxCountPerIssueType. */
export const ANNOTATION_MESSAGE_LIMIT = 4096;
const ANNOTATIONS_PER_LEVEL = 10;

/** GitHub masks every secret a job can read, wherever it shows up. */
function secretValues(ctx: Contexts): string[] {
  return Object.values((ctx.secrets ?? {}) as Record<string, unknown>).filter(
    (v): v is string => typeof v === 'string' && v.length > 0,
  );
}

/** What GitHub records of a step's workflow commands: the annotations, masked and within its limits. */
function stepAnnotations(output: string, masks: string[] = []): RunAnnotation[] {
  const parsed = parseWorkflowCommands(output);
  const all = [...masks, ...parsed.masks];
  const counts = { error: 0, warning: 0, notice: 0 };
  const out: RunAnnotation[] = [];
  for (const a of parsed.annotations) {
    if (a.level === 'debug') continue;
    counts[a.level] += 1;
    if (counts[a.level] > ANNOTATIONS_PER_LEVEL) continue;
    const message = maskText(a.message, all).slice(0, ANNOTATION_MESSAGE_LIMIT);
    const properties = Object.fromEntries(
      Object.entries(a.properties).map(([k, v]) => [k, maskText(v, all)]),
    );
    out.push({ level: a.level, message, properties });
  }
  return out;
}

export interface JobRecord {
  /** Path of job ids through reusable workflows: `pipeline/production/deploy`. */
  path: string;
  id: string;
  name: string;
  environment?: string;
  conclusion: Conclusion;
  outputs: Record<string, string>;
  steps: StepRecord[];
  durationMs: number;
  reason?: string;
}

export type RunnerEvent =
  | { type: 'job-start'; job: JobRecord }
  | { type: 'job-end'; job: JobRecord }
  | { type: 'step-start'; job: JobRecord; step: { name: string } }
  | { type: 'step-end'; job: JobRecord; step: StepRecord }
  | { type: 'approval'; job: JobRecord; environment: string; approved: boolean }
  | { type: 'output'; job: JobRecord; text: string };

export interface EventContext {
  name: string;
  ref: string;
  sha: string;
  repository: string;
  actor: string;
  payload: Record<string, unknown>;
  headRef?: string;
}

export interface RunnerOptions {
  /** Root of this repository: our action folders, dist/ and reusable workflows. */
  repoRoot: string;
  /** The caller's checkout: `./` paths and `run:` steps work here. */
  workspace: string;
  /** The owner/name our `uses:` references carry, such as acme/pipeline; any `*\/pipeline` matches. */
  event: EventContext;
  secrets: Record<string, string>;
  /** Environment secrets, which override repository secrets in jobs that run in that environment. */
  environmentSecrets?: Record<string, Record<string, string>>;
  vars: Record<string, string>;
  /** Environment variables every step sees (KUBECONFIG, GITHUB_API_URL, ...). */
  env: Record<string, string>;
  githubApiUrl: string;
  token: string;
  /**
   * An environment's deployment branch policy: whether a run of `ref` may use it (GitHub checks
   * this before any approval). Absent: every branch may.
   */
  allowsRef?(environment: string, ref: string): boolean;
  /** Environments that pause for approval, and who decides. */
  requiresApproval(environment: string): boolean;
  approve(environment: string, job: JobRecord): Promise<boolean>;
  onEvent?(event: RunnerEvent): void;
  runId?: string;
  /**
   * Record a GitHub deployment for every job that names an environment, with in_progress and a
   * final status, as GitHub does for such jobs (through githubApiUrl). Off by default: tests of
   * the runner alone have no GitHub to talk to.
   */
  recordEnvironmentDeployments?: boolean;
}

export interface WorkflowRun {
  conclusion: Conclusion;
  jobs: JobRecord[];
  outputs: Record<string, string>;
}

class WorkflowError extends Error {}

type Token = Parameters<typeof tokenValue>[0];
type MappingLike = { find(key: string): Token };
type SequenceLike = { count: number; get(i: number): Token };

/** The converter keeps no `with:` for steps; read it from the parsed (not converted) tokens. */
function rawStepField(root: Token, jobId: string, index: number, field: string): Token {
  const jobs = (root as unknown as MappingLike | undefined)?.find('jobs') as unknown as
    | MappingLike
    | undefined;
  const job = jobs?.find(jobId) as unknown as MappingLike | undefined;
  const steps = job?.find('steps') as unknown as SequenceLike | undefined;
  if (!steps || index >= steps.count) return undefined;
  return (steps.get(index) as unknown as MappingLike).find(field);
}

async function loadWorkflow(
  file: string,
): Promise<{ template: WorkflowTemplate; raw: Record<string, unknown>; root: Token }> {
  const content = readFileSync(file, 'utf8');
  const parsed = parseWorkflow({ name: file, content }, new NoOperationTraceWriter());
  const errors = parsed.context.errors.getErrors();
  if (errors.length > 0 || !parsed.value)
    throw new WorkflowError(`${file}: ${errors.map((e) => e.message).join('; ')}`);
  const template = await convertWorkflowTemplate(parsed.context, parsed.value);
  if (template.errors?.length)
    throw new WorkflowError(`${file}: ${template.errors.map((e) => e.Message).join('; ')}`);
  return { template, raw: parseYaml(content) as Record<string, unknown>, root: parsed.value as Token };
}

function topological(jobs: Job[]): Job[] {
  const byId = new Map(jobs.map((j) => [j.id.value, j]));
  const done = new Set<string>();
  const out: Job[] = [];
  const visit = (job: Job, stack: string[]) => {
    const id = job.id.value;
    if (done.has(id)) return;
    if (stack.includes(id)) throw new WorkflowError(`jobs ${[...stack, id].join(' → ')} need each other`);
    for (const need of job.needs ?? []) {
      const dep = byId.get(need.value);
      if (!dep) throw new WorkflowError(`job ${id} needs ${need.value}, which does not exist`);
      visit(dep, [...stack, id]);
    }
    done.add(id);
    out.push(job);
  };
  for (const job of jobs) visit(job, []);
  return out;
}

/** What a run: step's script left: its exit code, file commands and log. */
interface ScriptRun {
  exitCode: number;
  outputs: Record<string, string>;
  env: Record<string, string>;
  summary: string;
  log: string;
}

export class WorkflowRunner {
  private readonly options: RunnerOptions;
  private readonly stepTimeoutMs = 20 * 60_000;

  constructor(options: RunnerOptions) {
    this.options = options;
  }

  private github(jobId: string): Record<string, unknown> {
    const e = this.options.event;
    const refName = e.ref.replace(/^refs\/(heads|tags)\//, '');
    return {
      event_name: e.name,
      event: e.payload,
      ref: e.ref,
      ref_name: refName,
      ref_type: e.ref.startsWith('refs/tags/') ? 'tag' : 'branch',
      head_ref: e.headRef ?? '',
      base_ref: '',
      sha: e.sha,
      repository: e.repository,
      repository_owner: e.repository.split('/')[0],
      actor: e.actor,
      triggering_actor: e.actor,
      run_id: this.options.runId ?? '1',
      run_number: '1',
      run_attempt: '1',
      workflow: 'release',
      job: jobId,
      server_url: 'https://github.com',
      api_url: this.options.githubApiUrl,
      token: this.options.token,
      workspace: this.options.workspace,
    };
  }

  /** A `uses:` path to a workflow file we can read: `./.github/...` in the caller, ours by repository. */
  private resolveWorkflow(ref: string): string {
    if (ref.startsWith('./')) return resolve(this.options.workspace, ref);
    const m = /^[^/]+\/pipeline\/(\.github\/workflows\/[^@]+)@.+$/.exec(ref);
    if (m) return join(this.options.repoRoot, m[1]!);
    throw new WorkflowError(
      `cannot run the reusable workflow ${ref}: only this repository's and the caller's own workflows can run locally`,
    );
  }

  private resolveAction(uses: string): string | undefined {
    const action = ourActionOf(uses);
    // A local path names our action only when this repository has it.
    if (action && uses.startsWith('./') && !existsSync(join(this.options.repoRoot, action, 'action.yml')))
      return undefined;
    return action;
  }

  async runWorkflow(
    file: string,
    call: { inputs?: Record<string, unknown>; secrets?: Record<string, string>; pathPrefix?: string } = {},
  ): Promise<WorkflowRun> {
    const { template, raw, root } = await loadWorkflow(file);
    const onCall = ((raw.on as Record<string, unknown> | undefined)?.workflow_call ?? {}) as {
      inputs?: Record<string, { required?: boolean; default?: unknown; type?: string }>;
      outputs?: Record<string, { value: string }>;
    };
    const inputs: Record<string, unknown> = {};
    // A run started by hand (workflow_dispatch) gets its inputs from the event, as on GitHub.
    const dispatched =
      !call.inputs && !call.pathPrefix && this.options.event.name === 'workflow_dispatch'
        ? (((raw.on as Record<string, unknown> | undefined)?.workflow_dispatch ?? {}) as typeof onCall)
        : undefined;
    const declared = (dispatched ?? onCall).inputs;
    const passed =
      call.inputs ??
      (dispatched ? ((this.options.event.payload.inputs ?? {}) as Record<string, unknown>) : undefined);
    const trigger = dispatched ? 'workflow_dispatch' : 'workflow_call';
    if (passed) {
      for (const [name, spec] of Object.entries(declared ?? {})) {
        const given = passed[name];
        if (given === undefined || given === '') {
          if (spec.required && spec.default === undefined)
            throw new WorkflowError(`${file}: the required input '${name}' was not given`);
          inputs[name] =
            typeof spec.default === 'string' && spec.default.includes('${{')
              ? interpolate(spec.default, { github: this.github('') })
              : (spec.default ?? (spec.type === 'boolean' ? false : spec.type === 'number' ? 0 : ''));
        } else {
          inputs[name] =
            spec.type === 'boolean'
              ? given === true || given === 'true'
              : spec.type === 'number'
                ? Number(given)
                : given;
        }
      }
      for (const name of Object.keys(passed)) {
        if (!(name in (declared ?? {})))
          throw new WorkflowError(
            `${file}: the input '${name}' is passed but not declared in on.${trigger}.inputs`,
          );
      }
    }
    const secrets = call.secrets ?? this.options.secrets;
    const workflowEnv = (tokenValue(template.env, {
      github: this.github(''),
      inputs,
      secrets,
      vars: this.options.vars,
    }) ?? {}) as Record<string, unknown>;

    const records: JobRecord[] = [];
    const results = new Map<string, JobRecord>();
    for (const job of topological(template.jobs)) {
      const id = job.id.value;
      const needs: Record<string, unknown> = {};
      for (const n of job.needs ?? []) {
        const r = results.get(n.value)!;
        needs[n.value] = { result: r.conclusion, outputs: r.outputs };
      }
      const needResults = (job.needs ?? []).map((n) => results.get(n.value)!.conclusion);
      const status: StatusFunctions = {
        success: () => needResults.every((r) => r === 'success'),
        failure: () => needResults.some((r) => r === 'failure'),
        cancelled: () => false,
      };
      const ctx: Contexts = {
        github: this.github(id),
        inputs,
        secrets,
        vars: this.options.vars,
        needs,
        env: workflowEnv,
      };
      const record: JobRecord = {
        path: `${call.pathPrefix ?? ''}${id}`,
        id,
        name: String(tokenValue(job.name, ctx) ?? id),
        conclusion: 'skipped',
        outputs: {},
        steps: [],
        durationMs: 0,
      };
      const started = performance.now();
      if (!truthy(tokenValue(job.if, ctx, status))) {
        record.reason = 'its if: condition was false';
        results.set(id, record);
        records.push(record);
        this.options.onEvent?.({ type: 'job-end', job: record });
        continue;
      }
      this.options.onEvent?.({ type: 'job-start', job: record });
      if (job.type === 'reusableWorkflowJob') {
        const inputValues = (tokenValue(job['input-values'], ctx) ?? {}) as Record<string, unknown>;
        const passedSecrets = job['inherit-secrets']
          ? secrets
          : Object.fromEntries(
              Object.entries((tokenValue(job['secret-values'], ctx) ?? {}) as Record<string, unknown>).map(
                ([k, v]) => [k, asText(v)],
              ),
            );
        const nested = await this.runWorkflow(this.resolveWorkflow(job.ref.value), {
          inputs: inputValues,
          secrets: passedSecrets,
          pathPrefix: `${record.path}/`,
        });
        records.push(...nested.jobs);
        record.conclusion = nested.conclusion;
        record.outputs = nested.outputs;
      } else {
        await this.runJob(job, record, ctx, (index, field) => rawStepField(root, id, index, field));
      }
      record.durationMs = performance.now() - started;
      results.set(id, record);
      records.push(record);
      this.options.onEvent?.({ type: 'job-end', job: record });
    }

    const conclusion: Conclusion = [...results.values()].some((r) => r.conclusion === 'failure')
      ? 'failure'
      : 'success';
    const jobsCtx = Object.fromEntries(
      [...results].map(([id, r]) => [id, { result: r.conclusion, outputs: r.outputs }]),
    );
    const outputs: Record<string, string> = {};
    for (const [name, spec] of Object.entries(onCall.outputs ?? {})) {
      outputs[name] = asText(
        interpolate(String(spec.value ?? ''), { github: this.github(''), inputs, jobs: jobsCtx }),
      );
    }
    return { conclusion, jobs: records, outputs };
  }

  private async runJob(
    job: Extract<Job, { type: 'job' }>,
    record: JobRecord,
    ctx: Contexts,
    raw: (index: number, field: string) => Token,
  ): Promise<void> {
    const envToken = tokenValue(job.environment, ctx);
    const environment =
      typeof envToken === 'string' ? envToken : (envToken as { name?: string } | undefined)?.name;
    if (environment) {
      record.environment = environment;
      const scoped = this.options.environmentSecrets?.[environment];
      if (scoped) ctx.secrets = { ...(ctx.secrets as Record<string, string>), ...scoped };
      const ref = this.options.event.ref;
      if (this.options.allowsRef && !this.options.allowsRef(environment, ref)) {
        record.conclusion = 'failure';
        record.reason = `${ref.startsWith('refs/tags/') ? 'Tag' : 'Branch'} "${ref.replace(/^refs\/(heads|tags)\//, '')}" is not allowed to deploy to ${environment} due to environment protection rules.`;
        return;
      }
      if (this.options.requiresApproval(environment)) {
        const approved = await this.options.approve(environment, record);
        this.options.onEvent?.({ type: 'approval', job: record, environment, approved });
        if (!approved) {
          record.conclusion = 'failure';
          record.reason = `the deployment to ${environment} was rejected`;
          return;
        }
      }
    }
    const deployment = environment ? await this.environmentDeployment(environment, record) : undefined;
    try {
      await this.runJobSteps(job, record, ctx, raw);
    } finally {
      await deployment?.(record.conclusion === 'success' ? 'success' : 'failure');
    }
  }

  /** The deployment GitHub records for a job in an environment; returns how to set its final status. */
  private async environmentDeployment(
    environment: string,
    job: JobRecord,
  ): Promise<((state: 'success' | 'failure') => Promise<void>) | undefined> {
    if (!this.options.recordEnvironmentDeployments) return undefined;
    const { repository, sha } = this.options.event;
    const api = async (path: string, body: unknown) => {
      const res = await fetch(`${this.options.githubApiUrl}/repos/${repository}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.options.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (!res.ok) throw new WorkflowError(`recording the deployment of job ${job.path}: HTTP ${res.status}`);
      return (await res.json()) as { id: number };
    };
    const created = await api('/deployments', {
      ref: sha,
      environment,
      auto_merge: false,
      required_contexts: [],
      description: `job ${job.path}`,
    });
    await api(`/deployments/${created.id}/statuses`, { state: 'in_progress', environment });
    return async (state) => {
      await api(`/deployments/${created.id}/statuses`, { state, environment });
    };
  }

  private async runJobSteps(
    job: Extract<Job, { type: 'job' }>,
    record: JobRecord,
    ctx: Contexts,
    raw: (index: number, field: string) => Token,
  ): Promise<void> {
    const jobEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries((ctx.env as Record<string, unknown>) ?? {})) jobEnv[k] = asText(v);
    for (const [k, v] of Object.entries(
      (tokenValue(job.env, { ...ctx, env: jobEnv }) ?? {}) as Record<string, unknown>,
    ))
      jobEnv[k] = asText(v);
    const steps: Record<
      string,
      { outputs: Record<string, string>; outcome: Conclusion; conclusion: Conclusion }
    > = {};
    let failed = false;
    const status: StatusFunctions = { success: () => !failed, failure: () => failed, cancelled: () => false };
    for (const [index, step] of job.steps.entries()) {
      const stepCtx: Contexts = {
        ...ctx,
        env: jobEnv,
        steps,
        job: { status: failed ? 'failure' : 'success' },
        runner: { os: 'Linux', arch: 'X64', temp: tmpdir() },
      };
      const stepId = step.id || `__step${index}`;
      const record_ = await this.runStep(step, stepId, stepCtx, status, jobEnv, record, raw(index, 'with'));
      record.steps.push(record_);
      steps[stepId] = { outputs: record_.outputs, outcome: record_.outcome, conclusion: record_.conclusion };
      if (record_.conclusion === 'failure') failed = true;
    }
    record.conclusion = failed ? 'failure' : 'success';
    const outputs = (tokenValue(job.outputs, { ...ctx, env: jobEnv, steps }) ?? {}) as Record<
      string,
      unknown
    >;
    for (const [k, v] of Object.entries(outputs)) record.outputs[k] = asText(v);
  }

  private async runStep(
    step: Step,
    id: string,
    ctx: Contexts,
    status: StatusFunctions,
    jobEnv: Record<string, string>,
    job: JobRecord,
    withToken: Token,
  ): Promise<StepRecord> {
    const s = step as Step & {
      if?: Parameters<typeof tokenValue>[0];
      env?: Parameters<typeof tokenValue>[0];
      uses?: { value: string };
      run?: Parameters<typeof tokenValue>[0];
      'continue-on-error'?: unknown;
    };
    const uses = s.uses?.value;
    const name = String(
      tokenValue(s.name, ctx) ??
        (uses ? uses : `run ${String(tokenValue(s.run, { ...ctx }) ?? '').split('\n')[0]}`.slice(0, 80)),
    );
    const base: StepRecord = {
      id,
      name,
      kind: uses ? 'action' : 'run',
      ...(uses ? { uses } : {}),
      conclusion: 'skipped',
      outcome: 'skipped',
      outputs: {},
      summary: '',
      annotations: [],
      log: '',
      durationMs: 0,
    };
    const condition = s.if ? tokenValue(s.if, ctx, status) : status.success();
    if (!truthy(condition)) return base;
    this.options.onEvent?.({ type: 'step-start', job, step: { name } });
    const started = performance.now();
    const stepEnv: Record<string, string> = { ...jobEnv };
    try {
      for (const [k, v] of Object.entries((tokenValue(s.env, ctx, status) ?? {}) as Record<string, unknown>))
        stepEnv[k] = asText(v);
    } catch (error) {
      return this.finish(base, started, 'failure', `${(error as Error).message}`, job);
    }
    if (uses) {
      const action = this.resolveAction(uses);
      if (!action) {
        const rec: StepRecord = {
          ...base,
          kind: 'skipped-action',
          conclusion: 'skipped',
          outcome: 'skipped',
          log: `skipped: ${uses} is not one of this suite's actions and does not run locally`,
        };
        this.options.onEvent?.({ type: 'step-end', job, step: rec });
        return rec;
      }
      let inputs: Record<string, string>;
      try {
        const raw = (tokenValue(withToken, ctx, status) ?? {}) as Record<string, unknown>;
        inputs = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, asText(v)]));
      } catch (error) {
        return this.finish(base, started, 'failure', (error as Error).message, job);
      }
      const result: StepResult = await runBuiltAction(action, {
        inputs,
        root: this.options.repoRoot,
        cwd: this.options.workspace,
        env: { ...this.options.env, ...stepEnv },
        github: this.stepContext(job),
        timeoutMs: 20 * 60_000,
        onStdout: (text) => this.options.onEvent?.({ type: 'output', job, text }),
      });
      for (const [k, v] of Object.entries(result.env)) jobEnv[k] = v;
      const error =
        result.exitCode === 0
          ? undefined
          : (result.annotations.find((a) => a.level === 'error')?.message ?? `exit code ${result.exitCode}`);
      const rec = this.finish(
        {
          ...base,
          outputs: result.outputs,
          summary: result.summary,
          annotations: stepAnnotations(result.stdout, [...secretValues(ctx), ...result.masks]),
          log: result.log,
        },
        started,
        result.exitCode === 0 ? 'success' : 'failure',
        error,
        job,
        s,
      );
      return rec;
    }
    const script = asText(tokenValue(s.run, ctx, status));
    const result = await this.runScript(script, stepEnv, job);
    for (const [k, v] of Object.entries(result.env)) jobEnv[k] = v;
    return this.finish(
      {
        ...base,
        outputs: result.outputs,
        summary: result.summary,
        annotations: stepAnnotations(result.log, secretValues(ctx)),
        log: result.log,
      },
      started,
      result.exitCode === 0 ? 'success' : 'failure',
      result.exitCode === 0 ? undefined : `exit code ${result.exitCode}`,
      job,
      s,
    );
  }

  /** What every step of `job` sees of the run, `uses:` or `run:` alike. */
  private stepContext(job: JobRecord): GitHubContextOptions {
    const e = this.options.event;
    return {
      repository: e.repository,
      sha: e.sha,
      ref: e.ref,
      ...(e.headRef ? { headRef: e.headRef } : {}),
      actor: e.actor,
      eventName: e.name,
      payload: e.payload,
      runId: this.options.runId ?? '1',
      workflow: 'release',
      job: job.id,
      apiUrl: this.options.githubApiUrl,
      token: this.options.token,
    };
  }

  private finish(
    rec: StepRecord,
    started: number,
    outcome: Conclusion,
    error: string | undefined,
    job: JobRecord,
    step?: { 'continue-on-error'?: unknown },
  ): StepRecord {
    const continueOnError =
      step?.['continue-on-error'] === true ||
      (step?.['continue-on-error'] as { value?: unknown } | undefined)?.value === true;
    const done: StepRecord = {
      ...rec,
      outcome,
      conclusion: outcome === 'failure' && continueOnError ? 'success' : outcome,
      durationMs: performance.now() - started,
      ...(error ? { error } : {}),
    };
    this.options.onEvent?.({ type: 'step-end', job, step: done });
    return done;
  }

  private runScript(script: string, env: Record<string, string>, job: JobRecord): Promise<ScriptRun> {
    const dir = mkdtempSync(join(tmpdir(), 'rehearse-run-'));
    const files = createFileCommands(dir);
    const scriptFile = join(dir, 'step.sh');
    writeFileSync(scriptFile, script);
    const eventFile = join(dir, 'event.json');
    writeFileSync(eventFile, JSON.stringify(this.options.event.payload));
    const fullEnv = withFileCommands(
      {
        ...stepEnvironment(this.stepContext(job), { workDir: dir, workspace: this.options.workspace }),
        GITHUB_EVENT_PATH: eventFile,
        ...this.options.env,
        ...env,
      },
      files,
    );
    return new Promise((resolvePromise) => {
      const child = spawn('bash', ['--noprofile', '--norc', '-eo', 'pipefail', scriptFile], {
        cwd: this.options.workspace,
        env: fullEnv,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let log = '';
      const onData = (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        log += text;
        this.options.onEvent?.({ type: 'output', job, text });
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      // A step that hangs is stopped, as GitHub does at a job's timeout, rather than hanging the run.
      const timer = setTimeout(() => {
        log += `\nthe step ran longer than ${Math.round(this.stepTimeoutMs / 1000)} s and was stopped\n`;
        child.kill('SIGKILL');
      }, this.stepTimeoutMs);
      child.on('error', (error) => {
        clearTimeout(timer);
        rmSync(dir, { recursive: true, force: true });
        resolvePromise({
          exitCode: 127,
          outputs: {},
          env: {},
          summary: '',
          log: `${log}\ncannot start bash: ${error.message}\n`,
        });
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        let result: ScriptRun;
        try {
          const { outputs, env: exported, summary } = readFileCommands(files);
          result = { exitCode: code ?? 1, outputs, env: exported, summary, log };
        } catch (error) {
          // A malformed record fails the step, as the runner does ("Unable to process file command").
          result = {
            exitCode: 1,
            outputs: {},
            env: {},
            summary: '',
            log: `${log}\nUnable to process file command successfully: ${(error as Error).message}\n`,
          };
        }
        rmSync(dir, { recursive: true, force: true });
        resolvePromise(result);
      });
    });
  }
}
