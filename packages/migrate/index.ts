// The action escapes its own summary lines with the engine it already loaded.
export { escapeMarkdown } from '../core/escape.ts';
export { dumpDatabase } from './backup.ts';
export {
  type ConnectionTarget,
  DatabaseConnectionError,
  describeTarget,
  resolveConnection,
  SSL_MODES,
  type SslMode,
  tlsOptions,
} from './connection.ts';
export { APPLICATION_NAME, runMigrations, sessionsClosed } from './engine.ts';
export {
  checksumOf,
  type IntegrityCheck,
  loadChecks,
  loadMigrations,
  MIGRATION_FILE_FORM,
  type Migration,
  MigrationFileError,
  needsNoTransaction,
} from './files.ts';
export { advisoryLockKey, historyTable } from './history.ts';
export {
  type AllowProblem,
  allowProblems,
  LINT_MODES,
  LINT_RULES,
  type LintFinding,
  type LintMode,
  type LintRule,
  lintMigrations,
} from './lint.ts';
export { RESET_SQL, restoreCommand } from './restore.ts';
export { applicationNameFor } from './session.ts';
export { splitStatements, statementAtPosition } from './sql.ts';
export { renderMigrationSummary } from './summary.ts';
export * from './types.ts';
