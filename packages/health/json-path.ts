import { InputError } from '../core/index.ts';

/**
 * A small JSON path: `.status`, `.checks[0].state`, `.["weird key"]`, `.` for the whole document.
 * Enough for health endpoints, with errors that say where the path stopped making sense.
 */
export type PathSegment = string | number;

const JSON_PATH_FORM = 'a path such as .status, .checks[0].state or .["key with spaces"]';

export function parseJsonPath(raw: string, field: string): PathSegment[] {
  const text = raw.trim();
  if (text === '.' || text === '$') return [];
  const segments: PathSegment[] = [];
  let i = text.startsWith('$') ? 1 : 0;
  const fail = (why: string): never => {
    throw new InputError(field, `has the JSON path ${JSON.stringify(raw)}, which ${why}`, JSON_PATH_FORM);
  };
  if (i >= text.length) fail('is empty');
  while (i < text.length) {
    const c = text[i];
    if (c === '.') {
      i++;
      if (text[i] === '[') continue;
      const m = /^[A-Za-z_][\w-]*/.exec(text.slice(i));
      if (!m) fail(`has no key after the dot at position ${i}`);
      segments.push(m![0]);
      i += m![0].length;
    } else if (c === '[') {
      const rest = text.slice(i);
      const index = /^\[(\d+)\]/.exec(rest);
      const quoted = /^\["((?:[^"\\]|\\.)*)"\]/.exec(rest);
      if (index) {
        segments.push(Number(index[1]));
        i += index[0].length;
      } else if (quoted) {
        segments.push(JSON.parse(`"${quoted[1]}"`) as string);
        i += quoted[0].length;
      } else {
        fail(`has an unclosed or invalid [ at position ${i}`);
      }
    } else {
      fail(`must start with . and use .key or [index] (stopped at position ${i})`);
    }
  }
  return segments;
}

export function readJsonPath(doc: unknown, path: PathSegment[]): { found: boolean; value: unknown } {
  let current: unknown = doc;
  for (const segment of path) {
    if (current === null || typeof current !== 'object') return { found: false, value: undefined };
    if (typeof segment === 'number') {
      if (!Array.isArray(current) || segment >= current.length) return { found: false, value: undefined };
      current = current[segment];
    } else {
      if (!(segment in (current as Record<string, unknown>))) return { found: false, value: undefined };
      current = (current as Record<string, unknown>)[segment];
    }
  }
  return { found: true, value: current };
}
