import { hash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { InputError } from '../core/index.ts';
import { hasStatement, isTransactionControl, type SqlStatement, splitStatements } from './sql.ts';

/** One migration as found on disk, validated. */
export interface Migration {
  version: bigint;
  /** The version as text without leading zeros: what the history table and results use. */
  id: string;
  name: string;
  /** The file holding the up section (`3_add_users.sql` or `3_add_users.up.sql`), relative to the directory. */
  file: string;
  /** The file holding the down section when it is a separate `.down.sql`. */
  downFile: string | undefined;
  up: string;
  /** undefined: no down section (irreversible); a section without statements reverts as a no-op. */
  down: string | undefined;
  /** False when the section carries `-- migrate:no-transaction`. */
  upTransactional: boolean;
  downTransactional: boolean;
  /**
   * sha256 (hex) of the up section, line endings normalised, surrounding blank space trimmed,
   * `-- pipeline:allow` comments left out.
   */
  checksum: string;
  /**
   * The checksum with the acknowledgements in, when the section has any: what history rows
   * written before they were left out hold.
   */
  legacyChecksum?: string | undefined;
  /** The up section as the loader split it, when it did (a section the read-time checks had to look into). */
  upStatements?: readonly SqlStatement[];
  /**
   * A single file's comment lines before its first `-- migrate:` marker, where headers (and their
   * `-- pipeline:allow` lines) go; lines numbered as in the file. Not part of the checksum.
   */
  header?: string;
}

export interface IntegrityCheck {
  /** The file name without `.sql`. */
  name: string;
  file: string;
  sql: string;
}

export const MIGRATION_FILE_FORM =
  '<version>_<name>.sql with "-- migrate:up" and optional "-- migrate:down" sections (dbmate), or a ' +
  '<version>_<name>.up.sql / <version>_<name>.down.sql pair (golang-migrate); <version> a whole number or ' +
  'timestamp (1 to 9223372036854775807), <name> any text, dots included (0002_1.7.0_schema.up.sql); ' +
  "or Flyway's V<version>__<description>.sql (up only)";

const MAX_VERSION = 9_223_372_036_854_775_807n; // the history table stores versions as bigint
// golang-migrate's own pattern is ^([0-9]+)_(.*)\.(down|up)\.sql$: the name may hold anything.
const FILE_NAME = /^(\d+)_(.*?)(\.up|\.down)?\.sql$/i;
// Flyway's versioned migrations, up only: the whole file is the up section.
const FLYWAY_NAME = /^V(\d+)__(.+)\.sql$/;
const FLYWAY_OTHER = /^(?:V[\d._]+__|[RU][\d._]*__).+\.sql$/;
const DIRECTIVE = /^--\s*migrate:(\S*)(.*)$/;

/** A migration file that cannot be used; `file` names it. */
export class MigrationFileError extends InputError {
  readonly file: string;
  constructor(input: string, file: string, problem: string, accepted = MIGRATION_FILE_FORM) {
    super(input, `has a file ${JSON.stringify(file)} that ${problem}`, accepted);
    this.file = file;
  }
}

export function checksumOf(section: string): string {
  return checksumsOf(section).checksum;
}

/**
 * The checksum, and the one from before acknowledgements were left out of it when that differs
 * (a history row written then still matches the file it was written for). One-shot hashes: for
 * hundreds of small sections, cheaper than createHash().update().digest().
 */
function checksumsOf(section: string): { checksum: string; legacyChecksum: string | undefined } {
  const text = normaliseSection(section);
  if (!text.includes('pipeline:allow')) {
    const checksum = hash('sha256', text, 'hex');
    return { checksum, legacyChecksum: undefined };
  }
  return {
    checksum: hash('sha256', withoutAcknowledgements(text), 'hex'),
    legacyChecksum: hash('sha256', text, 'hex'),
  };
}

/** Whether a history row's checksum is this migration's (now, or as computed before). */
export function checksumMatches(m: Pick<Migration, 'checksum' | 'legacyChecksum'>, stored: string): boolean {
  return stored === m.checksum || (m.legacyChecksum !== undefined && stored === m.legacyChecksum);
}

function normaliseSection(text: string): string {
  return text.replace(/\r\n?/g, '\n').trim();
}

/**
 * A `-- pipeline:allow` comment acknowledges a lint finding; adding one to an applied migration
 * (production's lint refuses what staging's only warned about) is not an edit of what it does.
 */
function withoutAcknowledgements(text: string): string {
  return text
    .replace(/^[ \t]*--[ \t]*pipeline:allow\b[^\n]*(?:\n|$)/gm, '')
    .replace(/[ \t]*--[ \t]*pipeline:allow\b[^\n]*/g, '')
    .trim();
}

async function requireDirectory(
  dir: string,
  input: string,
  what: string,
  warn?: (message: string) => void,
): Promise<string[]> {
  let isDir = false;
  try {
    isDir = (await stat(dir)).isDirectory();
  } catch {
    throw new InputError(
      input,
      `names ${JSON.stringify(dir)}, which does not exist`,
      `a directory of ${what}`,
    );
  }
  if (!isDir)
    throw new InputError(
      input,
      `names ${JSON.stringify(dir)}, which is not a directory`,
      `a directory of ${what}`,
    );
  const entries = await readdir(dir, { withFileTypes: true });
  const subdirectories = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
  if (subdirectories.length > 0) warnAboutSubdirectories(dir, subdirectories, what, warn);
  return entries
    .filter((e) => (e.isFile() || e.isSymbolicLink()) && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
}

/**
 * Subdirectories are not read (dbmate and golang-migrate read one directory; Flyway reads its tree):
 * .sql files in one are said, so a team moving from Flyway does not lose migrations silently.
 */
function warnAboutSubdirectories(
  dir: string,
  subdirectories: string[],
  what: string,
  warn: ((message: string) => void) | undefined,
): void {
  if (!warn) return;
  const found: string[] = [];
  for (const sub of subdirectories.sort()) {
    try {
      for (const name of readdirSync(join(dir, sub)))
        if (name.toLowerCase().endsWith('.sql')) found.push(`${sub}/${name}`);
    } catch {
      // unreadable: nothing to say about it
    }
  }
  if (found.length > 0)
    warn(
      `${dir} has .sql files in subdirectories (${found.slice(0, 3).join(', ')}${found.length > 3 ? `, and ${found.length - 3} more` : ''}), which are not read: only the directory's own files are ${what}`,
    );
}

interface Sections {
  header?: string;
  up: string | undefined;
  down: string | undefined;
  upTransactional: boolean;
  downTransactional: boolean;
}

function parseOptions(rest: string, input: string, file: string, line: number): boolean {
  // dbmate's `-- migrate:up transaction:false` is accepted as a synonym of no-transaction.
  let transactional = true;
  for (const option of rest.trim().split(/\s+/).filter(Boolean)) {
    if (option === 'transaction:false') transactional = false;
    else if (option !== 'transaction:true')
      throw new MigrationFileError(
        input,
        file,
        `has an unknown option ${JSON.stringify(option)} on line ${line}`,
      );
  }
  return transactional;
}

/** Parses a single file with `-- migrate:up` / `-- migrate:down` markers. */
function parseSingleFile(text: string, input: string, file: string): Sections {
  const lines = (text.includes('\r') ? text.replace(/\r\n?/g, '\n') : text).split('\n');
  let current: 'head' | 'up' | 'down' = 'head';
  const body: Record<'head' | 'up' | 'down', string[]> = { head: [], up: [], down: [] };
  const seen = new Set<string>();
  let headNoTx = false;
  let upTx = true;
  let downTx = true;
  for (let index = 0; index < lines.length; index++) {
    const raw = lines[index]!;
    // Most lines are SQL: only one holding "migrate:" is trimmed and matched.
    const directive = raw.includes('migrate:') ? DIRECTIVE.exec(raw.trim()) : null;
    if (!directive) {
      body[current].push(raw);
      continue;
    }
    const [, kind = '', rest = ''] = directive;
    const lineNo = index + 1;
    if (kind === 'up' || kind === 'down') {
      if (seen.has(kind))
        throw new MigrationFileError(
          input,
          file,
          `has a second "-- migrate:${kind}" marker on line ${lineNo}`,
        );
      seen.add(kind);
      current = kind;
      const transactional = parseOptions(rest, input, file, lineNo);
      if (kind === 'up') upTx = transactional;
      else downTx = transactional;
      // Blank lines in place of everything before the section keep PostgreSQL's error positions
      // (and so the line numbers we report) aligned with the file.
      body[current] = new Array<string>(index + 1).fill('');
      continue;
    }
    if (kind === 'no-transaction' && !rest.trim()) {
      if (current === 'head') headNoTx = true;
      else if (current === 'up') upTx = false;
      else downTx = false;
      body[current].push('');
      continue;
    }
    throw new MigrationFileError(
      input,
      file,
      `has an unknown directive "-- migrate:${kind}" on line ${lineNo}`,
      'the directives -- migrate:up, -- migrate:down and -- migrate:no-transaction',
    );
  }
  if (!seen.has('up')) throw new MigrationFileError(input, file, 'has no "-- migrate:up" section');
  if (hasStatement(body.head.join('\n')))
    throw new MigrationFileError(input, file, 'has SQL before its "-- migrate:up" marker');
  return {
    header: body.head.join('\n'),
    up: body.up.join('\n'),
    down: seen.has('down') ? body.down.join('\n') : undefined,
    upTransactional: upTx && !headNoTx,
    downTransactional: downTx && !headNoTx,
  };
}

/** A `.up.sql` or `.down.sql` file: the whole file is the section; only no-transaction may appear. */
function parseHalfFile(text: string, input: string, file: string): { sql: string; transactional: boolean } {
  const lines = (text.includes('\r') ? text.replace(/\r\n?/g, '\n') : text).split('\n');
  let transactional = true;
  const out = lines.map((raw, index) => {
    const directive = raw.includes('migrate:') ? DIRECTIVE.exec(raw.trim()) : null;
    if (!directive) return raw;
    if (directive[1] === 'no-transaction' && !directive[2]?.trim()) {
      transactional = false;
      return '';
    }
    throw new MigrationFileError(
      input,
      file,
      `has the directive "-- migrate:${directive[1]}" on line ${index + 1}, which only single-file migrations use`,
      'only -- migrate:no-transaction in .up.sql and .down.sql files',
    );
  });
  return { sql: out.join('\n'), transactional };
}

/**
 * Statements PostgreSQL refuses inside a transaction block. Found when the files are read, so a
 * set with one of them in a transactional section fails before the first migration applies.
 */
const OUTSIDE_TRANSACTION: [RegExp, string][] = [
  [/^create\s+(?:unique\s+)?index\s+concurrently\b/, 'CREATE INDEX CONCURRENTLY'],
  [/^drop\s+index\s+concurrently\b/, 'DROP INDEX CONCURRENTLY'],
  [/^reindex\b[^;]*\bconcurrently\b/, 'REINDEX CONCURRENTLY'],
  [/^reindex\s+(?:\([^)]*\)\s*)?(?:database|system)\b/, 'REINDEX DATABASE/SYSTEM'],
  [/^alter\s+table\b[^;]*\bdetach\s+partition\b[^;]*\bconcurrently\b/, 'DETACH PARTITION CONCURRENTLY'],
  [/^vacuum\b/, 'VACUUM'],
  [/^(?:create|drop)\s+database\b/, 'CREATE/DROP DATABASE'],
  [/^(?:create|drop)\s+tablespace\b/, 'CREATE/DROP TABLESPACE'],
  [/^alter\s+system\b/, 'ALTER SYSTEM'],
];

const OUTSIDE_TRANSACTION_WORDS = /concurrently|reindex|vacuum|database|tablespace|system/i;

/**
 * Every word the read-time checks look for: the transaction-control keywords (a statement's first
 * word, so whole words) and the words of OUTSIDE_TRANSACTION. A section holding none of them
 * passes both checks without being split; most sections hold none, and a long history is
 * hundreds of them read on every run.
 */
const CHECKED_WORDS =
  /\b(?:begin|commit|rollback|end|abort|start|prepare)\b|concurrently|reindex|vacuum|database|tablespace|system/i;

/** Whether the read-time checks could refuse something in `section` (false: they cannot). */
export function sectionNeedsChecks(section: string): boolean {
  return CHECKED_WORDS.test(section);
}

/** The name of the statement kind that cannot run in a transaction, or undefined. */
export function needsNoTransaction(statement: string): string | undefined {
  // Every pattern needs one of these words; most statements have none, and skip the normalising.
  if (!OUTSIDE_TRANSACTION_WORDS.test(statement)) return undefined;
  const text = statement
    .replace(/--[^\n]*/g, ' ')
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .toLowerCase();
  return OUTSIDE_TRANSACTION.find(([pattern]) => pattern.test(text))?.[1];
}

function checkSection(
  statements: readonly SqlStatement[],
  transactional: boolean,
  input: string,
  file: string,
  section: string,
  singleFile: boolean,
): void {
  if (!transactional) return;
  for (const statement of statements) {
    if (isTransactionControl(statement.text)) {
      throw new MigrationFileError(
        input,
        file,
        `controls transactions itself in its ${section} section (line ${statement.line}: ${statement.text.slice(0, 40)})`,
        'a migration without BEGIN/COMMIT (each migration already runs in a transaction), or one marked -- migrate:no-transaction',
      );
    }
    const kind = needsNoTransaction(statement.text);
    if (kind) {
      throw new MigrationFileError(
        input,
        file,
        `runs ${kind} on line ${statement.line}, which PostgreSQL cannot run inside a transaction, but its ${section} section runs in one`,
        singleFile
          ? `"-- migrate:${section} transaction:false" as the section's marker (or "-- migrate:no-transaction" inside it), so it runs outside a transaction one statement at a time; best with that statement alone in its migration`
          : `a line "-- migrate:no-transaction" in ${file}, so it runs outside a transaction one statement at a time; best with that statement alone in its migration`,
      );
    }
  }
}

/** A file's text; one that cannot be read (a broken symlink, no permission) is named, not a stack. */
function readMigrationFile(path: string, input: string, file: string): string {
  try {
    const text = readFileSync(path, 'utf8');
    // A byte-order mark (editors on Windows write one) is not SQL; psql skips it too.
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new MigrationFileError(
      input,
      file,
      code === 'ENOENT'
        ? 'is a symlink to a file that does not exist'
        : `cannot be read (${code ?? (error as Error).message})`,
      'a readable file (a symlink must point to one)',
    );
  }
}

/** One turn of the event loop (its I/O included), between slices of synchronous work. */
const breathe = () => new Promise<void>((resolve) => setImmediate(resolve));

export interface LoadOptions {
  /** The input name used in error messages (default "dir"). */
  input?: string;
  /** Told what is read past, such as .sql files in subdirectories. */
  warn?: (message: string) => void;
}

/**
 * Reads and validates every migration in `dir` before anything touches a database: the directory
 * exists, every `.sql` file is named `<version>_<name>[.up|.down].sql`, versions are unique (compared
 * as numbers, so `001_a.sql` and `1_b.sql` clash), each migration has an up section (an empty one
 * is a no-op that is recorded, as dbmate and golang-migrate apply it) and no BEGIN/COMMIT of its
 * own. Other files (README.md, .keep) are ignored. Returns them by version.
 */
export async function loadMigrations(dir: string, options: LoadOptions = {}): Promise<Migration[]> {
  const input = options.input ?? 'dir';
  const names = await requireDirectory(dir, input, 'migration .sql files', options.warn);
  const byVersion = new Map<bigint, { single?: string; up?: string; down?: string; name: string }>();
  for (const file of names) {
    if (!file.toLowerCase().endsWith('.sql')) continue;
    const flyway = FLYWAY_NAME.exec(file);
    const match = flyway ?? FILE_NAME.exec(file);
    if (!match) {
      if (FLYWAY_OTHER.test(file))
        throw new MigrationFileError(
          input,
          file,
          'is a Flyway migration this tool does not run (a dotted version, a repeatable R__ or an undo U__ file)',
          'Flyway versioned migrations with whole-number versions, V<version>__<description>.sql, up only',
        );
      throw new MigrationFileError(input, file, 'is not named <version>_<name>.sql');
    }
    const [, versionText = '', name = ''] = match;
    const half = flyway ? '.up' : match[3]?.toLowerCase();
    const version = BigInt(versionText);
    if (version < 1n || version > MAX_VERSION)
      throw new MigrationFileError(input, file, `has the version ${versionText}, which is out of range`);
    const entry = byVersion.get(version) ?? { name };
    const clash = (other: string | undefined) => {
      if (other)
        throw new MigrationFileError(
          input,
          file,
          `has the same version as ${JSON.stringify(other)} (versions are compared as numbers)`,
          'one migration per version',
        );
    };
    if (entry.name !== name) clash(entry.single ?? entry.up ?? entry.down);
    if (half === '.up') {
      clash(entry.single ?? entry.up);
      entry.up = file;
    } else if (half === '.down') {
      clash(entry.single ?? entry.down);
      entry.down = file;
    } else {
      clash(entry.single ?? entry.up ?? entry.down);
      entry.single = file;
    }
    byVersion.set(version, entry);
  }

  // Read one after another, synchronously: for hundreds of small files this is 3-5 times faster
  // than concurrent fs/promises reads (500 files: ~20 ms against 75-120 ms), each of which makes
  // four thread-pool round trips (open, stat, read, close). Every 50 files the event loop gets a
  // turn, so the session opening meanwhile (engine.ts) keeps its round trips going.
  const texts = new Map<string, string>();
  // One join for the directory: path.join per file normalised the whole path hundreds of times.
  const prefix = join(dir, sep);
  let done = 0;
  for (const e of byVersion.values())
    for (const f of [e.single, e.up, e.down]) {
      if (f === undefined) continue;
      texts.set(f, readMigrationFile(prefix + f, input, f));
      if (++done % 50 === 0) await breathe();
    }
  const migrations: Migration[] = [];
  for (const [version, entry] of byVersion) {
    if (++done % 50 === 0) await breathe();
    let sections: Sections;
    let file: string;
    let downFile: string | undefined;
    if (entry.single) {
      file = entry.single;
      sections = parseSingleFile(texts.get(file)!, input, file);
    } else if (entry.up) {
      file = entry.up;
      const up = parseHalfFile(texts.get(file)!, input, file);
      let down: { sql: string; transactional: boolean } | undefined;
      if (entry.down) {
        downFile = entry.down;
        down = parseHalfFile(texts.get(downFile)!, input, downFile);
      }
      sections = {
        up: up.sql,
        down: down?.sql,
        upTransactional: up.transactional,
        downTransactional: down?.transactional ?? true,
      };
    } else {
      throw new MigrationFileError(input, entry.down!, 'has no matching .up.sql file');
    }
    const up = sections.up ?? '';
    // Split only a section the checks could refuse (once: the split travels with the migration);
    // the rest is split when it runs or is linted, if it ever is.
    const upStatements = sectionNeedsChecks(up) ? splitStatements(up) : undefined;
    const single = entry.single !== undefined;
    if (upStatements) checkSection(upStatements, sections.upTransactional, input, file, 'up', single);
    if (sections.down !== undefined && sections.downTransactional && sectionNeedsChecks(sections.down))
      checkSection(splitStatements(sections.down), true, input, downFile ?? file, 'down', single);
    migrations.push({
      version,
      id: version.toString(),
      name: entry.name,
      file,
      downFile,
      up,
      // An empty or comment-only down section is a no-op revert, as in golang-migrate and dbmate;
      // only a missing one makes the migration irreversible.
      down: sections.down,
      upTransactional: sections.upTransactional,
      downTransactional: sections.downTransactional,
      ...checksumsOf(up),
      upStatements,
      header: sections.header,
    });
  }
  return migrations.sort((a, b) => (a.version < b.version ? -1 : a.version > b.version ? 1 : 0));
}

/** Reads integrity checks: every `.sql` file in `dir`, in name order; each must hold a query. */
export async function loadChecks(dir: string, options: LoadOptions = {}): Promise<IntegrityCheck[]> {
  const input = options.input ?? 'checks-dir';
  const names = await requireDirectory(dir, input, 'integrity check .sql files', options.warn);
  const checks: IntegrityCheck[] = [];
  for (const file of names) {
    if (!file.toLowerCase().endsWith('.sql')) continue;
    const sql = await readFile(join(dir, file), 'utf8');
    if (splitStatements(sql).length === 0)
      throw new InputError(
        input,
        `has a file ${JSON.stringify(file)} without a query`,
        'one query per file that returns no rows when the data is sound',
      );
    checks.push({ name: file.slice(0, -'.sql'.length), file, sql });
  }
  return checks;
}
