import type { Migration } from './files.ts';
import { lineAt, splitStatements } from './sql.ts';

/**
 * A built-in migration safety lint in the manner of squawk and Atlas: rule by rule, each finding
 * with why it hurts and the safe alternative. Statements are read from our psql-faithful splitter
 * and matched on their leading words; the lint only reads pending migrations.
 */
export const LINT_RULES = {
  'add-column-volatile-default': {
    why: 'ADD COLUMN with a volatile default (random(), gen_random_uuid(), clock_timestamp(), nextval()) rewrites the whole table under an ACCESS EXCLUSIVE lock',
    instead:
      'add the column without a default (or with a constant one), then fill it in batches and set the default afterwards',
  },
  'alter-column-type': {
    why: 'ALTER COLUMN … TYPE rewrites the table (and its indexes) under an ACCESS EXCLUSIVE lock, and a narrower type breaks the application version still running',
    instead:
      'add a new column of the new type, backfill it in batches, switch the application, then drop the old column',
  },
  'set-not-null': {
    why: 'SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock unless a validated CHECK (col IS NOT NULL) already proves it',
    instead:
      'ADD CONSTRAINT … CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT in a later migration, then SET NOT NULL (PostgreSQL 12+ uses the check) and drop the check',
  },
  'create-index-blocking': {
    why: 'CREATE INDEX without CONCURRENTLY on an existing table blocks every write to it until the index is built',
    instead: 'CREATE INDEX CONCURRENTLY in a migration of its own marked -- migrate:no-transaction',
  },
  'constraint-without-not-valid': {
    why: 'ADD FOREIGN KEY / CHECK without NOT VALID checks every existing row while holding a lock that blocks writes (the referenced table too, for a foreign key)',
    instead:
      'ADD CONSTRAINT … NOT VALID, then ALTER TABLE … VALIDATE CONSTRAINT in a later migration (a SHARE UPDATE EXCLUSIVE lock only)',
  },
  'vacuum-full': {
    why: 'VACUUM FULL rewrites the table under an ACCESS EXCLUSIVE lock: no reads or writes until it finishes',
    instead: 'plain VACUUM, or pg_repack outside the migration',
  },
  cluster: {
    why: 'CLUSTER rewrites the table under an ACCESS EXCLUSIVE lock: no reads or writes until it finishes',
    instead: 'pg_repack outside the migration, or leave the physical order alone',
  },
  'drop-column': {
    why: 'dropping a column breaks the application version still running during a canary or blue-green (its queries name the column)',
    instead: 'stop using the column in a release first, then drop it in a later one',
  },
  'rename-column': {
    why: 'renaming a column breaks the application version still running during a canary or blue-green',
    instead:
      'add the new column, write both, backfill, switch reads, and drop the old one in a later release',
  },
  'drop-table': {
    why: 'dropping a table loses its data and breaks the application version still running',
    instead: 'stop using the table in a release first; keep a backup; drop it in a later one',
  },
  'rename-table': {
    why: 'renaming a table breaks the application version still running during a canary or blue-green',
    instead:
      'create a view with the old name over the renamed table until every running version uses the new one',
  },
  'add-not-null-without-default': {
    why: 'ADD COLUMN … NOT NULL without a default fails on a table with rows, and inserts from the application version still running (which does not set it) fail',
    instead: 'add the column nullable or with a default, backfill, then enforce NOT NULL',
  },
  'drop-object': {
    why: 'DROP of a schema, type, view, sequence or domain destroys what the application may still use',
    instead: 'stop using it in a release first, then drop it in a later one',
  },
  truncate: {
    why: 'TRUNCATE deletes every row of the table, and takes an ACCESS EXCLUSIVE lock',
    instead: 'DELETE with a WHERE clause in batches, or keep the data',
  },
  'delete-without-where': {
    why: 'DELETE without WHERE removes every row of the table',
    instead: 'a WHERE clause naming the rows to remove',
  },
  'add-column-serial': {
    why: 'ADD COLUMN of type serial / bigserial fills every existing row from a sequence: a table rewrite under an ACCESS EXCLUSIVE lock',
    instead:
      'add a nullable bigint column, attach the sequence as its default, backfill existing rows in batches, then set NOT NULL (or use GENERATED … AS IDENTITY on a new table)',
  },
  'add-unique-blocking': {
    why: 'ADD PRIMARY KEY / ADD CONSTRAINT … UNIQUE builds its index while holding a lock that blocks every write to the table',
    instead:
      'CREATE UNIQUE INDEX CONCURRENTLY in a -- migrate:no-transaction migration, then ADD CONSTRAINT … PRIMARY KEY / UNIQUE USING INDEX',
  },
  'drop-index-blocking': {
    why: 'DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the table: reads and writes wait behind it',
    instead: 'DROP INDEX CONCURRENTLY in a migration of its own marked -- migrate:no-transaction',
  },
  'reindex-blocking': {
    why: 'REINDEX without CONCURRENTLY blocks writes to the table (and reads through the index) until every index is rebuilt',
    instead:
      'REINDEX … CONCURRENTLY (PostgreSQL 12+) in a migration of its own marked -- migrate:no-transaction',
  },
  'lock-table': {
    why: 'LOCK TABLE holds its lock (ACCESS EXCLUSIVE by default) until the migration commits, queueing every query on the table behind it',
    instead: 'let each statement take the lock it needs, with lock_timeout set; keep such a migration short',
  },
  'rename-enum-value': {
    why: 'ALTER TYPE … RENAME VALUE breaks the application version still running: it reads and writes the old label',
    instead:
      'ADD VALUE the new label, move rows and the application to it, and stop using the old one (enum values cannot be dropped)',
  },
  'drop-function': {
    why: 'DROP FUNCTION / PROCEDURE breaks the application version, triggers and views still calling it',
    instead: 'stop calling it in a release first, then drop it in a later one',
  },
  'update-without-where': {
    why: 'UPDATE without WHERE rewrites every row of an existing table in one transaction: every row locked, the table bloated, a long lock for writers',
    instead: 'a WHERE clause naming the rows, in batches (by primary key ranges) for a large table',
  },
  'missing-lock-timeout': {
    why: 'in production a statement that waits for a busy table queues every query behind it: without lock_timeout the outage lasts as long as the wait',
    instead:
      "SET lock_timeout = '5s' at the top of the migration (or the statement-lock-timeout input), and retry on failure",
  },
} as const;

export type LintRule = keyof typeof LINT_RULES;
export const LINT_MODES = ['error', 'warn', 'off'] as const;
export type LintMode = (typeof LINT_MODES)[number];

export interface LintFinding {
  file: string;
  line: number;
  rule: LintRule;
  statement: string;
  why: string;
  instead: string;
  /** Whether a `-- pipeline:allow <rule> <reason>` line in the file acknowledges it. */
  acknowledged: boolean;
  /** That line's reason, when acknowledged. */
  reason?: string;
}

/** A `-- pipeline:allow` line that acknowledges nothing: no reason, or a rule that does not exist. */
export interface AllowProblem {
  file: string;
  line: number;
  problem: string;
}

export interface LintContext {
  /** Production: also flags a missing lock_timeout (unless the run sets statement-lock-timeout). */
  production: boolean;
  statementLockTimeout: boolean;
}

const IDENT = String.raw`(?:"(?:[^"]|"")+"|[\w$]+)`;
const NAME = String.raw`(${IDENT}(?:\s*\.\s*${IDENT})?)`;
const VOLATILE =
  /\b(?:random|gen_random_uuid|uuid_generate_v[14]|clock_timestamp|timeofday|nextval|txid_current)\s*\(/;
const ALLOW = /--[ \t]*pipeline:allow[ \t]+([a-z-]+)[ \t]+(\S.*)$/gm;

const ALLOW_LINE = /--[ \t]*pipeline:allow\b(.*)$/gm;

/**
 * Where a file's `-- pipeline:allow` lines count: its header above `-- migrate:up` (where such
 * lines usually go) and its up section; never the down section, which the lint does not read.
 * Both are numbered as in the file, so a line's index gives its line number.
 */
function allowTexts(m: Migration): string[] {
  return m.header ? [m.header, m.up] : [m.up];
}

/**
 * Every `-- pipeline:allow` line that does not have the form `<rule> <reason>` with a known rule:
 * silently ignoring one would leave its author believing a finding is acknowledged.
 */
export function allowProblems(migrations: Migration[]): AllowProblem[] {
  const problems: AllowProblem[] = [];
  for (const m of migrations) {
    for (const text of allowTexts(m))
      for (const a of text.matchAll(ALLOW_LINE)) {
        const [rule, ...rest] = a[1]!.trim().split(/\s+/);
        const line = lineAt(text, a.index);
        const known = Object.keys(LINT_RULES).join(', ');
        if (!rule)
          problems.push({
            file: m.file,
            line,
            problem: `names no rule and no reason; write "-- pipeline:allow <rule> <reason>" (rules: ${known})`,
          });
        else if (!/^[a-z-]+$/.test(rule) || !(rule in LINT_RULES))
          problems.push({
            file: m.file,
            line,
            problem: `names the rule "${rule}", which does not exist (rules: ${known})`,
          });
        else if (rest.join(' ').trim() === '')
          problems.push({
            file: m.file,
            line,
            problem: `allows ${rule} without a reason, so it acknowledges nothing; say why it is safe here`,
          });
      }
  }
  return problems;
}

/** Comments out, whitespace collapsed, lower case: what the rules match on. */
function plain(text: string): string {
  return text
    .replace(/--[^\n]*/g, ' ')
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .toLowerCase();
}

/** schema.table or table, unquoted: how "the same table" is recognised. */
function tableKey(name: string): string {
  const parts = name.split(/\s*\.\s*/).map((p) => p.replace(/^"|"$/g, '').replace(/""/g, '"'));
  return parts[parts.length - 1]!;
}

/** The comma-separated actions of an ALTER TABLE, commas inside parentheses kept. */
function actions(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      out.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(text.slice(start).trim());
  return out.filter(Boolean);
}

// Compiled once: the lint reads every statement of every pending migration (2,000 in a set of 100
// migrations of 20 statements), and building these per statement cost more than the matching.
const LOCKED_TABLE = new RegExp(
  `^(?:alter table (?:if exists )?(?:only )?|drop table (?:if exists )?|truncate (?:table )?(?:only )?|lock (?:table )?(?:only )?|create (?:unique )?index (?:if not exists )?(?:${IDENT} )?on (?:only )?)${NAME}`,
);
const CREATE_TABLE = new RegExp(
  `^create (?:(?:global |local )?(?:temporary |temp |unlogged ))?table (?:if not exists )?${NAME}`,
);
const ALTER_TABLE = new RegExp(`^alter table (?:if exists )?(?:only )?${NAME} (.*)$`);
const CREATE_INDEX = new RegExp(
  `^create (?:unique )?index (?!concurrently)(?:if not exists )?(?:${IDENT} )?on (?:only )?${NAME}`,
);
const DROP_TABLE = new RegExp(`^drop table (?:if exists )?${NAME}`);
const DELETE_OR_UPDATE = new RegExp(`^(?:delete from|update) (?:only )?${NAME}`);

const STRONG_LOCK =
  /^(?:alter table|create (?:unique )?index (?!concurrently)|drop table|truncate|vacuum full|cluster|lock |reindex (?!.*concurrently))/;

const LEADING_WORD = /^[a-z_]+(?![\w$])/i;
const RULE_WORDS = new Set([
  'set',
  'alter',
  'create',
  'drop',
  'truncate',
  'vacuum',
  'cluster',
  'lock',
  'reindex',
  'delete',
  'update',
]);

/** Findings for the up sections of the pending migrations, in order. */
export function lintMigrations(pending: Migration[], context: LintContext): LintFinding[] {
  const created = new Set<string>();
  const findings: LintFinding[] = [];
  for (const m of pending) {
    const own: LintFinding[] = [];
    let lockTimeoutSet = false;
    let lockFlagged = false;
    const flag = (rule: LintRule, line: number, text: string) => {
      const statement = text.replace(/\s+/g, ' ');
      own.push({
        file: m.file,
        line,
        rule,
        statement: statement.length > 160 ? `${statement.slice(0, 157)}...` : statement,
        why: LINT_RULES[rule].why,
        instead: LINT_RULES[rule].instead,
        acknowledged: false,
      });
    };
    for (const statement of m.upStatements ?? splitStatements(m.up)) {
      // Every rule is anchored at one of these leading words, but for set_config anywhere: a data
      // statement (the INSERTs of a seed) is not normalised only to match nothing.
      const lead = LEADING_WORD.exec(statement.text);
      if (lead && !RULE_WORDS.has(lead[0].toLowerCase()) && !/set_config/i.test(statement.text)) continue;
      const s = plain(statement.text);
      const at = statement.line;
      const one = statement.text; // flag() collapses its whitespace, only for a finding
      if (/^set (?:local |session )?lock_timeout\b/.test(s) || /set_config\s*\(\s*'lock_timeout'/.test(s))
        lockTimeoutSet = true;
      const existing = (name: string) => !created.has(tableKey(name));
      if (
        context.production &&
        !context.statementLockTimeout &&
        !lockTimeoutSet &&
        !lockFlagged &&
        STRONG_LOCK.test(s)
      ) {
        const target = LOCKED_TABLE.exec(s);
        if (!target || existing(target[1]!)) {
          flag('missing-lock-timeout', at, one);
          lockFlagged = true;
        }
      }
      let match = CREATE_TABLE.exec(s);
      if (match) {
        created.add(tableKey(match[1]!));
        continue;
      }
      match = ALTER_TABLE.exec(s);
      if (match) {
        const table = match[1]!;
        const rest = match[2]!;
        const renamed = /^rename to (.+)$/.exec(rest);
        if (renamed) {
          if (existing(table)) flag('rename-table', at, one);
          else created.add(tableKey(renamed[1]!));
          continue;
        }
        if (!existing(table)) continue;
        for (const action of actions(rest)) {
          if (
            /^add (?:column )?(?:if not exists )?(?!constraint\b|foreign\b|check\b|primary\b|unique\b|exclude\b)/.test(
              action,
            )
          ) {
            const def = /\bdefault\b(.*)$/.exec(action);
            if (def && VOLATILE.test(def[1]!)) flag('add-column-volatile-default', at, one);
            if (/\bnot null\b/.test(action) && !def && !/\b(?:generated|identity)\b/.test(action))
              flag('add-not-null-without-default', at, one);
            if (/\breferences\b/.test(action)) flag('constraint-without-not-valid', at, one);
            if (/^add (?:column )?(?:if not exists )?\S+ (?:big|small)?serial[248]?\b/.test(action))
              flag('add-column-serial', at, one);
          } else if (/^add (?:constraint \S+ )?(?:primary key|unique)\b/.test(action)) {
            if (!/\busing index\b/.test(action)) flag('add-unique-blocking', at, one);
          } else if (/^add (?:constraint \S+ )?(?:foreign key|check)\b/.test(action)) {
            if (!/\bnot valid\b/.test(action)) flag('constraint-without-not-valid', at, one);
          } else if (/^alter (?:column )?\S+ (?:set data )?type\b/.test(action)) {
            flag('alter-column-type', at, one);
          } else if (/^alter (?:column )?\S+ set not null\b/.test(action)) {
            flag('set-not-null', at, one);
          } else if (/^drop (?:column )?(?!constraint\b)/.test(action)) {
            flag('drop-column', at, one);
          } else if (/^rename (?:column )?(?!constraint\b|to\b)\S+ to\b/.test(action)) {
            flag('rename-column', at, one);
          }
        }
        continue;
      }
      match = CREATE_INDEX.exec(s);
      if (match) {
        if (existing(match[1]!)) flag('create-index-blocking', at, one);
        continue;
      }
      match = DROP_TABLE.exec(s);
      if (match) {
        if (existing(match[1]!)) flag('drop-table', at, one);
        continue;
      }
      match = DELETE_OR_UPDATE.exec(s);
      if (match) {
        if (existing(match[1]!) && !/\bwhere\b/.test(s))
          flag(s.startsWith('update') ? 'update-without-where' : 'delete-without-where', at, one);
        continue;
      }
      if (/^drop (?:schema|type|view|materialized view|sequence|domain)\b/.test(s))
        flag('drop-object', at, one);
      else if (/^drop (?:function|procedure|routine)\b/.test(s)) flag('drop-function', at, one);
      else if (/^drop index\b(?! concurrently)/.test(s)) flag('drop-index-blocking', at, one);
      else if (/^reindex\b/.test(s) && !/\bconcurrently\b/.test(s)) flag('reindex-blocking', at, one);
      else if (/^lock\b/.test(s)) flag('lock-table', at, one);
      else if (/^alter type \S+ rename value\b/.test(s)) flag('rename-enum-value', at, one);
      else if (/^truncate\b/.test(s)) flag('truncate', at, one);
      else if (/^vacuum (?:\([^)]*\bfull\b[^)]*\)|full\b)/.test(s)) flag('vacuum-full', at, one);
      else if (/^cluster\b/.test(s)) flag('cluster', at, one);
    }
    if (own.length === 0) continue;
    const allowed = new Map<string, string>();
    for (const text of allowTexts(m)) for (const a of text.matchAll(ALLOW)) allowed.set(a[1]!, a[2]!.trim());
    for (const f of own) {
      const reason = allowed.get(f.rule);
      findings.push(reason ? { ...f, acknowledged: true, reason } : f);
    }
  }
  return findings;
}
