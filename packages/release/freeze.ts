/**
 * Freezes: "nothing deploys to <environment> until this is lifted", with who, when and why. A
 * freeze lives where a platform team can flip it without a commit to every service: a repository
 * or organisation variable (PIPELINE_FREEZE, which a workflow reads as vars.PIPELINE_FREEZE) or a
 * file in the platform repository. Both hold the same YAML or JSON: one freeze or a list of them.
 *
 *   - environments: [production]      # or "*" for every environment
 *     by: alice
 *     at: 2026-12-18T16:00:00Z
 *     reason: end-of-year freeze
 *     until: 2027-01-04T08:00:00+01:00 # optional; lifted by itself then
 *
 * A rollback pins its environment with a freeze of its own (`by: rollback`), cleared the same way.
 */

import { parse as parseYaml } from 'yaml';

export interface Freeze {
  /** Environment names, or ['*'] for all. */
  environments: string[];
  by: string;
  /** When it was set, ISO 8601. */
  at: string;
  reason: string;
  /** When it lifts by itself, ISO 8601; absent for "until someone lifts it". */
  until?: string;
  /** Where it was read: the variable's or the file's name. */
  source: string;
}

export class FreezeError extends Error {}

export const FREEZE_FORM =
  'YAML or JSON: a freeze {environments, by, at, reason, until?} or a list of them (empty for none)';

function isoInstant(value: unknown, field: string, where: string): string {
  const text = value instanceof Date ? value.toISOString() : String(value ?? '');
  if (
    !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text) ||
    Number.isNaN(Date.parse(text))
  )
    throw new FreezeError(
      `${where}: ${field} is ${JSON.stringify(text)}, not an ISO 8601 time with its offset`,
    );
  return text;
}

/** Reads the freezes in a variable's value or a file's content; empty text means none. */
export function parseFreezes(text: string, source: string): Freeze[] {
  if (text.trim() === '') return [];
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (error) {
    throw new FreezeError(`${source} is not valid YAML (${(error as Error).message.split('\n')[0]})`);
  }
  if (doc === null || doc === undefined) return [];
  const list = Array.isArray(doc)
    ? doc
    : typeof doc === 'object' && 'freezes' in (doc as object)
      ? ((doc as { freezes: unknown }).freezes ?? [])
      : [doc];
  if (!Array.isArray(list)) throw new FreezeError(`${source}: freezes is not a list`);
  return list.map((item, i) => {
    const where = list.length > 1 || Array.isArray(doc) ? `${source}[${i}]` : source;
    if (typeof item !== 'object' || item === null || Array.isArray(item))
      throw new FreezeError(`${where} is not a mapping`);
    const f = item as Record<string, unknown>;
    const envs = f.environments ?? f.environment;
    const environments =
      envs === '*' ? ['*'] : Array.isArray(envs) ? envs.map(String) : typeof envs === 'string' ? [envs] : [];
    if (environments.length === 0 || environments.some((e) => !/^[\w.*-]+$/.test(e)))
      throw new FreezeError(`${where}: environments must name environments, or be "*" for all`);
    for (const key of ['by', 'reason'] as const)
      if (typeof f[key] !== 'string' || (f[key] as string).trim() === '')
        throw new FreezeError(`${where}: ${key} is required (who froze it and why)`);
    return {
      environments,
      by: (f.by as string).trim(),
      at: isoInstant(f.at, 'at', where),
      reason: (f.reason as string).trim(),
      ...(f.until !== undefined && f.until !== null ? { until: isoInstant(f.until, 'until', where) } : {}),
      source,
    };
  });
}

/** The freeze that holds `environment` at `now`: the earliest set of those in force, if any. */
export function activeFreeze(freezes: Freeze[], environment: string, now: number): Freeze | undefined {
  return (
    freezes
      // GitHub treats environment names case-insensitively: Production is production.
      .filter(
        (f) =>
          f.environments.includes('*') ||
          f.environments.some((e) => e.toLowerCase() === environment.toLowerCase()),
      )
      .filter((f) => Date.parse(f.at) <= now && (f.until === undefined || Date.parse(f.until) > now))
      .sort((a, b) => Date.parse(a.at) - Date.parse(b.at))[0]
  );
}

/** The file content of one freeze, as the rollback writes it to pin an environment. */
export function freezeDocument(freeze: Omit<Freeze, 'source'>): string {
  return `${JSON.stringify(freeze)}\n`;
}
