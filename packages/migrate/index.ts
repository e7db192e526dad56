export { dumpDatabase, restoreCommand } from './backup.ts';
export {
  type ConnectionTarget,
  DatabaseConnectionError,
  describeTarget,
  resolveConnection,
  SSL_MODES,
  type SslMode,
  tlsOptions,
} from './connection.ts';
export { APPLICATION_NAME, LOCK_APPLICATION_NAME, runMigrations } from './engine.ts';
export {
  checksumOf,
  type IntegrityCheck,
  loadChecks,
  loadMigrations,
  MIGRATION_FILE_FORM,
  type Migration,
  MigrationFileError,
} from './files.ts';
export { advisoryLockKey, historyTable } from './history.ts';
export { splitStatements, statementAtPosition } from './sql.ts';
export { escapeMarkdown, fencedBlock, renderMigrationSummary } from './summary.ts';
export * from './types.ts';
