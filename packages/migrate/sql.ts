/** One top-level statement of a migration section, with where it sits in the section's text. */
export interface SqlStatement {
  /** The statement's text without the terminating semicolon, trimmed. */
  text: string;
  /** Offsets into the section text: [start, end) covers the statement, leading comments excluded. */
  start: number;
  end: number;
  /** 1-based line of the statement's first character in the section. */
  line: number;
}

// Identifier characters ([A-Za-z_] then [A-Za-z0-9_$], and everything from U+0080 up) and
// whitespace (JavaScript's \s) by character code: the splitter looks at every character, and a
// regular expression per character cost most of a large file's split.
const isSpace = (code: number, c: string) =>
  code === 32 || (code >= 9 && code <= 13) || (code >= 0x80 && /\s/.test(c));
const isIdentStart = (code: number) =>
  (code >= 97 && code <= 122) || (code >= 65 && code <= 90) || code === 95 || code >= 0x80;
const isIdentPart = (code: number) => isIdentStart(code) || (code >= 48 && code <= 57) || code === 36;
const LEADING_WORDS = new Set(['create', 'or', 'replace', 'function', 'procedure']);
const ROUTINE = /^c(?:[fp]|or[fp])/;

/**
 * Splits SQL into top-level statements the way psql does: semicolons inside quotes, quoted
 * identifiers, dollar-quoted bodies, comments (nested block comments too), parentheses and
 * SQL-standard `BEGIN ATOMIC ... END` bodies of CREATE [OR REPLACE] FUNCTION / PROCEDURE do not
 * end a statement.
 *
 * Migrations run one statement at a time: CREATE INDEX CONCURRENTLY refuses to run inside a
 * multi-statement query, and an error without a position (a timeout, a constraint violation)
 * still names its statement.
 */
export function splitStatements(sql: string): SqlStatement[] {
  const statements: SqlStatement[] = [];
  let start = -1; // first significant character of the current statement
  let atomicDepth = 0;
  let parenDepth = 0; // CREATE RULE ... DO (a; b) keeps its semicolons inside parentheses
  let wordsInStatement = 0;
  // psql's heuristic (psqlscan.l): the first letters of the statement's leading CREATE / OR /
  // REPLACE / FUNCTION / PROCEDURE words; only such a statement opens a BEGIN ATOMIC body.
  let leading = '';
  // Whether the leading words so far are CREATE [OR REPLACE] FUNCTION/PROCEDURE: tested when a
  // leading word is added, not on every identifier of the statement.
  let routine = false;
  let i = 0;
  const n = sql.length;

  // No closures here: the build keeps function names, which costs a defineProperty per closure
  // per call, and the loader calls this twice per file.
  const lines: LineCursor = { offset: 0, number: 1 };
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const eol = sql.indexOf('\n', i);
      i = eol < 0 ? n : eol + 1;
      continue;
    }
    if (c === '/' && next === '*') {
      i = afterBlockComment(sql, i);
      continue;
    }
    const code = sql.charCodeAt(i);
    if (isSpace(code, c)) {
      i++;
      continue;
    }
    if (start < 0) start = i;
    if (c === '(' || c === ')') {
      parenDepth = Math.max(0, parenDepth + (c === '(' ? 1 : -1));
      i++;
      continue;
    }
    if (c === ';') {
      if (atomicDepth > 0 || parenDepth > 0) {
        i++;
        continue;
      }
      pushStatement(sql, statements, start, i, lines);
      start = -1;
      atomicDepth = 0;
      parenDepth = 0;
      wordsInStatement = 0;
      leading = '';
      routine = false;
      i++;
      continue;
    }
    if (c === "'") {
      const escapes = i > 0 && /[eE]/.test(sql[i - 1]!) && (i < 2 || !isIdentPart(sql.charCodeAt(i - 2)));
      i = skipQuoted(sql, i, "'", escapes);
      continue;
    }
    if (c === '"') {
      i = skipQuoted(sql, i, '"', false);
      continue;
    }
    if (c === '$' && (i === 0 || !isIdentPart(sql.charCodeAt(i - 1)))) {
      const tag = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i, i + 64));
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        i = close < 0 ? n : close + tag[0].length;
        continue;
      }
    }
    if (isIdentStart(code)) {
      let j = i + 1;
      while (j < n && isIdentPart(sql.charCodeAt(j))) j++;
      // Only the leading words and the words of a function's statement are looked at.
      let word = '';
      if (wordsInStatement < 4) {
        word = sql.slice(i, j).toLowerCase();
        leading += LEADING_WORDS.has(word) ? word[0] : ' ';
        routine = ROUTINE.test(leading);
      }
      wordsInStatement++;
      // A column or table named "begin" elsewhere must not swallow the semicolons after it.
      if (parenDepth === 0 && routine) {
        word ||= sql.slice(i, j).toLowerCase();
        if (word === 'begin') atomicDepth++;
        else if (word === 'case' && atomicDepth > 0) atomicDepth++;
        else if (word === 'end' && atomicDepth > 0) atomicDepth--;
      }
      i = j;
      continue;
    }
    i++;
  }
  pushStatement(sql, statements, start, n, lines);
  return statements;
}

/** The index after the block comment opening at `from` (`/*`), nested ones included, as PostgreSQL reads them. */
function afterBlockComment(sql: string, from: number): number {
  const n = sql.length;
  let depth = 1;
  let i = from + 2;
  while (i < n && depth > 0) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      depth++;
      i += 2;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      depth--;
      i += 2;
    } else i++;
  }
  return i;
}

/**
 * Whether `sql` holds a statement at all, as splitStatements would find one: anything but blank
 * space, comments and semicolons. Stops at the first such character instead of splitting.
 */
export function hasStatement(sql: string): boolean {
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const code = sql.charCodeAt(i);
    const next = sql.charCodeAt(i + 1);
    if (code === 45 && next === 45) {
      const eol = sql.indexOf('\n', i);
      i = eol < 0 ? n : eol + 1;
    } else if (code === 47 && next === 42) i = afterBlockComment(sql, i);
    else if (code === 59 || isSpace(code, sql[i]!)) i++;
    else return true;
  }
  return false;
}

/**
 * Lines are counted from the previous statement's start, not the file's: a seed file of thousands
 * of statements would otherwise cost time quadratic in its size.
 */
interface LineCursor {
  offset: number;
  number: number;
}

function pushStatement(
  sql: string,
  statements: SqlStatement[],
  start: number,
  end: number,
  lines: LineCursor,
): void {
  if (start < 0) return;
  const text = sql.slice(start, end).trim();
  if (!text) return;
  for (let k = lines.offset; k < start; k++) if (sql.charCodeAt(k) === 10) lines.number++;
  lines.offset = start;
  statements.push({ text, start, end: start + text.length, line: lines.number });
}

function skipQuoted(sql: string, from: number, quote: string, backslashEscapes: boolean): number {
  let i = from + 1;
  while (i < sql.length) {
    const c = sql[i];
    if (backslashEscapes && c === '\\') {
      i += 2;
      continue;
    }
    if (c === quote) {
      if (sql[i + 1] === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return sql.length;
}

export function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/**
 * The statement a PostgreSQL error position (1-based, in characters of the text sent) points at.
 * A position past a statement's end but before the next one (trailing comment) maps to the former.
 */
export function statementAtPosition(
  sql: string,
  position: number,
  statements: readonly SqlStatement[] = splitStatements(sql),
): SqlStatement | undefined {
  const offset = position - 1;
  // Statements are in order of their start: a binary search keeps locating many errors linear.
  let lo = 0;
  let hi = statements.length - 1;
  let found: SqlStatement | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const statement = statements[mid]!;
    if (statement.start <= offset) {
      found = statement;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/** Line and column (both 1-based) of a 1-based character position. */
export function lineAndColumn(text: string, position: number): { line: number; column: number } {
  const offset = Math.max(0, Math.min(text.length, position - 1));
  const before = text.slice(0, offset);
  const lastNewline = before.lastIndexOf('\n');
  return { line: lineAt(text, offset), column: offset - lastNewline };
}

/** Whether a statement ends or opens a transaction itself, which would break the one we wrap it in. */
export function isTransactionControl(statement: string): boolean {
  // Anchored and case-insensitive on the statement itself: no lower-cased copy of every statement.
  if (/^\s*rollback\s+(?:work\s+|transaction\s+)?to\b/i.test(statement)) return false; // ROLLBACK TO SAVEPOINT is fine
  return /^\s*(?:begin|commit|rollback|end|abort|start\s+transaction|prepare\s+transaction)\b/i.test(
    statement,
  );
}
