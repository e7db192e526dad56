import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { defineInputs, input } from '../packages/config/index.ts';
import type { RunContext } from '../packages/config/run-context.ts';
import { InputError, type Logger } from '../packages/core/index.ts';
import { checkFilesInsideWorkspace, checkInsideWorkspace } from '../packages/core/paths.ts';
// types.ts holds no pg: the engine (and pg with it) is imported only once the inputs are valid.
import { LINT_MODES, type LintMode } from '../packages/migrate/lint.ts';
import {
  hasUnencodedUserinfo,
  MIGRATE_COMMANDS,
  type MigrateCommand,
  type MigrationResult,
  MigrationRunError,
  parseAllowDrift,
} from '../packages/migrate/types.ts';
import { runAction } from './runtime.ts';

export const schema = defineInputs({
  command: input.enum(MIGRATE_COMMANDS, { required: true }),
  'database-url': input.secret(),
  dir: input.string({ default: 'migrations' }),
  'checks-dir': input.string(),
  target: input.string(),
  steps: input.integer({ min: 1 }),
  table: input.string(),
  schema: input.string(),
  sslmode: input.string(),
  sslrootcert: input.string(),
  'lock-timeout': input.duration({ default: '2m' }),
  'statement-lock-timeout': input.duration(),
  'statement-timeout': input.duration(),
  batch: input.boolean({ default: 'false' }),
  'allow-drift': input.string({ default: 'false' }),
  'validate-constraints': input.boolean({ default: 'true' }),
  backup: input.boolean(),
  'backup-path': input.string(),
  'confirm-restore': input.string(),
  lint: input.string(),
  environment: input.string(),
  'allow-paths-outside-workspace': input.boolean({ default: 'false' }),
});

/** Versions for the one-line log: all of a few, the first and last of many (the outputs list all). */
function versions(list: readonly string[]): string {
  return list.length <= 12
    ? list.join(', ')
    : `${list.length} migrations (${list.slice(0, 5).join(', ')}, …, ${list.slice(-5).join(', ')})`;
}

/** The commands that change the database, and so the only ones a backup is taken for. */
const CHANGING: readonly MigrateCommand[] = ['up', 'down'];

/**
 * The input layer masks the whole URL; the password alone can still surface on its own (a driver
 * message, pg_dump's stderr), so it is masked too, as written and percent-decoded.
 */
function maskPassword(databaseUrl: string | undefined, log: Logger): void {
  if (!databaseUrl) return;
  // A URL whose password is not percent-encoded is refused by the engine; its pieces are no secret.
  if (hasUnencodedUserinfo(databaseUrl)) return;
  let password: string;
  try {
    password = new URL(databaseUrl).password;
  } catch {
    return; // the engine rejects the URL, naming the input; the whole value is masked already
  }
  if (!password) return;
  log.mask(password);
  try {
    log.mask(decodeURIComponent(password));
  } catch {
    // a malformed escape: the engine reports it
  }
}

/** `<RUNNER_TEMP>/<database>-<UTC time>.dump`: unique per run, and gone with the runner's temp dir. */
function defaultBackupPath(database: string, now: Date): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const name = database.replace(/[^A-Za-z0-9_.-]/g, '_') || 'database';
  return join(process.env.RUNNER_TEMP || tmpdir(), `${name}-${stamp}.dump`);
}

/** `acme/shop#1234.1 migrate`: what another run waiting for the lock is told holds it. */
function runLabel(run: RunContext): string | undefined {
  if (!run.repository && !run.runId) return undefined;
  return `${run.repository}#${run.runId}.${run.runAttempt}${run.job ? ` ${run.job}` : ''}`;
}

function appliedBy(run: RunContext): string | undefined {
  if (run.actor && run.runUrl) return `${run.actor} via ${run.runUrl}`;
  return run.actor || run.runUrl || undefined;
}

/** The result for later steps (`fromJSON`); the SQL of a plan stays in the summary, not the output. */
function resultJson(result: MigrationResult): string {
  return JSON.stringify({ ...result, migrations: result.migrations.map(({ sql: _sql, ...row }) => row) });
}

/** The first line of a failure, cut to what a chat message can show. */
function oneLine(message: string): string {
  const lines = message.split('\n');
  const at = lines.findIndex((line) => line.trim());
  let first = at < 0 ? message : lines[at]!;
  // "... do not match the history:" says nothing by itself: the indented list under it is the news.
  if (at >= 0 && first.trimEnd().endsWith(':')) {
    const items: string[] = [];
    for (const line of lines.slice(at + 1)) {
      if (!/^\s+\S/.test(line)) break;
      items.push(line.trim());
    }
    if (items.length > 0) first = `${first.trimEnd()} ${items.join('; ')}`;
  }
  return first.length > 500 ? `${first.slice(0, 499)}…` : first;
}

/**
 * What `up` will do with the plan's unacknowledged findings, said as that environment will do it:
 * a plan in lint mode error refuses (and so will up), one in warn mode warns and applies.
 */
function lintVerdict(
  result: MigrationResult,
  command: string,
  mode: LintMode,
  environment: string | undefined,
): string | undefined {
  if (command !== 'plan' || mode === 'off') return undefined;
  const open = (result.lint ?? []).filter((f) => !f.acknowledged);
  if (open.length === 0) return undefined;
  const where = open.map((f) => `${f.rule} at ${f.file}:${f.line}`).join('; ');
  const who = environment || 'up';
  return mode === 'error'
    ? `${who} will refuse: ${open.length} unacknowledged lint finding(s) (${where})`
    : `${open.length} unacknowledged lint finding(s), which ${who} warns about and applies (lint: warn): ${where}`;
}

/**
 * deploy.yml runs `plan` and then `up` in one job, and both lint the same pending files: the same
 * lint warning twice is two identical annotations above the run's summaries. GITHUB_ENV lives for
 * the rest of the job only, so it remembers (as hashes) what an earlier step of this job warned;
 * a repeat goes to the log alone, and another job (production's) warns afresh.
 */
const WARNED_VARIABLE = 'PIPELINE_MIGRATIONS_WARNED';
/** The lint's own warnings (steps.ts): findings, and allow lines that acknowledge nothing. */
const LINT_WARNING = /^(?:Migration safety lint:|\S+:\d+: -- pipeline:allow )/;

function warnOncePerJob(log: Logger, exportVariable: (name: string, value: string) => void): Logger {
  const warned = new Set((process.env[WARNED_VARIABLE] ?? '').split(',').filter(Boolean));
  return {
    ...log,
    warning(message) {
      if (!LINT_WARNING.test(message)) return log.warning(message);
      const key = createHash('sha256').update(message).digest('hex').slice(0, 16);
      if (warned.has(key)) {
        log.info(`Warned by an earlier step of this job, not repeated as an annotation: ${message}`);
        return;
      }
      warned.add(key);
      exportVariable(WARNED_VARIABLE, [...warned].join(','));
      log.warning(message);
    },
  };
}

export async function main(): Promise<void> {
  await runAction(
    schema,
    async ({ inputs, run, log, cancelled, setOutput, exportVariable, writeSummary }) => {
      maskPassword(inputs.databaseUrl, log);
      const drift = parseAllowDrift(inputs.allowDrift);
      if (drift.deprecated)
        log.warning(
          'allow-drift: true allows every kind of drift; name the kinds instead (out-of-order, edited, missing), so allowing a late hotfix does not also hide an edited file',
        );
      const lintText = inputs.lint?.trim().toLowerCase();
      if (lintText && !(LINT_MODES as readonly string[]).includes(lintText))
        throw new InputError('lint', `has ${JSON.stringify(inputs.lint)}`, `one of ${LINT_MODES.join(', ')}`);
      const readsBackup = inputs.command === 'restore' || inputs.command === 'verify-backup';
      if (readsBackup && !inputs.backupPath)
        throw new InputError(
          'backup-path',
          'is empty',
          `for ${inputs.command}, the path of a pg_dump archive (the backup-path output of the run that took it)`,
        );
      const workspace = process.env.GITHUB_WORKSPACE || process.cwd();
      for (const [name, dir] of [
        ['dir', inputs.dir],
        ['checks-dir', inputs.checksDir],
      ] as const)
        if (dir) {
          checkInsideWorkspace(dir, resolve(dir), workspace, name, inputs.allowPathsOutsideWorkspace);
          checkFilesInsideWorkspace(resolve(dir), workspace, name, inputs.allowPathsOutsideWorkspace);
        }
      const engine = await import('../packages/migrate/index.ts');

      const sslmode = inputs.sslmode?.toLowerCase();
      const knownSslmode = (mode: string | undefined): mode is (typeof engine.SSL_MODES)[number] =>
        (engine.SSL_MODES as readonly (string | undefined)[]).includes(mode);
      if (sslmode !== undefined && !knownSslmode(sslmode))
        throw new InputError(
          'sslmode',
          `has ${JSON.stringify(inputs.sslmode)}, which is not an sslmode`,
          `one of ${engine.SSL_MODES.join(', ')}`,
        );
      const connection = {
        databaseUrl: inputs.databaseUrl,
        sslmode: knownSslmode(sslmode) ? sslmode : undefined,
        sslRootCert: inputs.sslrootcert,
      };

      // Production gets a backup and a refusing lint unless the workflow says otherwise.
      const production = inputs.environment?.toLowerCase() === 'production';
      const lint = (lintText as LintMode | undefined) || (production ? 'error' : 'warn');
      const wantsBackup = inputs.backup ?? production;
      let backupPath: string | undefined;
      if (wantsBackup && CHANGING.includes(inputs.command)) {
        backupPath =
          inputs.backupPath ??
          defaultBackupPath(
            engine.resolveConnection({ ...connection, env: process.env, logger: log }).database,
            new Date(),
          );
      } else if (inputs.backup && !CHANGING.includes(inputs.command)) {
        log.info(`No backup for ${inputs.command}: it changes nothing (backups are taken by up and down)`);
      }

      const report = async (result: MigrationResult) => {
        setOutput('applied', [...result.applied, ...result.baselined].join(','));
        setOutput('reverted', result.reverted.join(','));
        setOutput('pending', result.pending.join(','));
        setOutput('current-version', result.currentVersion ?? '');
        setOutput('backup-path', result.backupPath ?? '');
        setOutput('lint', JSON.stringify(result.lint ?? []));
        setOutput('result', resultJson(result));
        let summary = engine.renderMigrationSummary(result);
        if (inputs.environment) {
          const heading = summary.indexOf('\n');
          summary = `${summary.slice(0, heading)}\n\nEnvironment: **${engine.escapeMarkdown(inputs.environment)}**\n${summary.slice(heading + 1)}`;
        }
        const verdict = lintVerdict(result, inputs.command, lint, inputs.environment);
        if (verdict) {
          const heading = summary.indexOf('\n');
          summary = `${summary.slice(0, heading)}\n\n**${engine.escapeMarkdown(verdict)}**\n${summary.slice(heading + 1)}`;
        }
        await writeSummary(summary);
        // The session was ending while the report was written; the step ends after both.
        await engine.sessionsClosed();
      };

      let result: MigrationResult;
      try {
        result = await engine.runMigrations({
          command: inputs.command,
          ...connection,
          dir: inputs.dir,
          checksDir: inputs.checksDir,
          target: inputs.target,
          steps: inputs.steps,
          table: inputs.table,
          schema: inputs.schema,
          batch: inputs.batch,
          lockTimeoutMs: inputs.lockTimeout,
          statementLockTimeoutMs: inputs.statementLockTimeout,
          statementTimeoutMs: inputs.statementTimeout,
          allowDrift: drift.kinds,
          validateConstraints: inputs.validateConstraints,
          backup: backupPath !== undefined ? { path: backupPath } : undefined,
          restore: readsBackup
            ? { path: inputs.backupPath!, confirm: inputs.confirmRestore ?? '' }
            : undefined,
          appliedBy: appliedBy(run),
          runLabel: runLabel(run),
          lint,
          production,
          logger: warnOncePerJob(log, exportVariable),
          cancelled,
          // The report is written while the server ends the session (report() waits for it).
          closeInBackground: true,
        });
      } catch (error) {
        // The first line names the file, the statement's error and its SQLSTATE: what Slack shows.
        setOutput('reason', oneLine(error instanceof Error ? error.message : String(error)));
        if (!(error instanceof MigrationRunError)) {
          await engine.sessionsClosed();
          throw error;
        }
        await report(error.result);
        const restore = error.result.restoreCommand;
        if (restore && inputs.command !== 'restore' && !error.message.includes(restore))
          log.info(`To restore the backup taken before this run: ${restore}`);
        throw error;
      }
      await report(result);
      setOutput('reason', '');
      const changed = [
        result.applied.length ? `applied ${versions(result.applied)}` : '',
        result.reverted.length ? `reverted ${versions(result.reverted)}` : '',
        result.baselined.length ? `baselined ${versions(result.baselined)}` : '',
        result.restoredFrom ? `restored from ${result.restoredFrom}` : '',
        result.backupCheck
          ? `backup drill passed: ${result.backupCheck.tables} table(s), history at version ${result.backupCheck.version ?? 'none'}`
          : '',
      ].filter(Boolean);
      // A failed row in the history is a no-transaction migration that stopped part-way.
      const stuck = result.migrations.filter((r) => r.state === 'failed').length;
      log.info(
        `${inputs.command}: ${changed.length ? changed.join('; ') : 'nothing changed'}; current version ${result.currentVersion ?? 'none'}, ${result.pending.length} ${inputs.command === 'plan' ? 'planned' : 'pending'}` +
          (stuck > 0
            ? `; ${stuck} failed part-way outside a transaction, which blocks up until resolved (see the summary)`
            : ''),
      );
    },
  );
}
