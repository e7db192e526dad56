/** The image behaviour table: which simulated container answers how, by image pattern. */
import type { ImageBehaviour } from './types.ts';

export const DEFAULT_BEHAVIOUR: Required<
  Pick<ImageBehaviour, 'mode' | 'pullMs' | 'startupMs' | 'readyMs' | 'crashAfterMs'>
> = {
  mode: 'ready',
  pullMs: 300,
  startupMs: 500,
  readyMs: 500,
  crashAfterMs: 1000,
};

export function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

function patternKey(p: string | RegExp): string {
  return typeof p === 'string' ? `glob:${p}` : `re:${p.source}/${p.flags}`;
}

export class BehaviourTable {
  private entries: { key: string; test: RegExp; behaviour: ImageBehaviour }[] = [];

  constructor(initial: ImageBehaviour[] = []) {
    for (const b of initial) this.add(b, false);
  }

  private add(b: ImageBehaviour, front: boolean): void {
    const key = patternKey(b.pattern);
    this.entries = this.entries.filter((e) => e.key !== key);
    const entry = {
      key,
      test: typeof b.pattern === 'string' ? globToRegExp(b.pattern) : b.pattern,
      behaviour: b,
    };
    if (front) this.entries.unshift(entry);
    else this.entries.push(entry);
  }

  /** A later setting for the same pattern replaces the old one and wins over every other pattern. */
  set(pattern: string | RegExp, behaviour: Omit<ImageBehaviour, 'pattern'> | ImageBehaviour): void {
    this.add({ ...behaviour, pattern }, true);
  }

  /** First matching entry, or the default (ready after a short delay, HTTP 200). */
  lookup(image: string): ImageBehaviour {
    for (const e of this.entries) {
      e.test.lastIndex = 0;
      if (e.test.test(image)) return e.behaviour;
    }
    return { pattern: '*' };
  }
}
