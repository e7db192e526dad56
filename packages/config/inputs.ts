import {
  DURATION_MAX,
  durationForm,
  InputError,
  isLoopbackHost,
  parseDuration,
  urlPathSecrets,
  urlUserInfoSecrets,
} from '../core/index.ts';
import { KUBE_NAME, KUBE_NAME_FORM, KUBE_NAME_MAX } from './kube-names.ts';

/**
 * One typed schema per action. Each field knows how to read one `action.yml` input, the form it
 * accepts (for the error message) and whether it is secret (masked before anything else runs).
 */
export interface InputField<T, Present extends boolean = boolean> {
  /** Phantom: true when the input always has a value (required, or has a default). */
  readonly present?: Present;
  readonly kind: string;
  readonly required: boolean;
  readonly secret: boolean;
  readonly defaultValue: string | undefined;
  readonly accepted: string;
  /**
   * What else the raw text gives away besides itself (the user info of a URL, the Basic header made
   * from it, a webhook's path): masked before any input is parsed, whether the input is secret or not.
   */
  readonly secretsOf?: (raw: string) => string[];
  /** Duration inputs: the largest value accepted, in ms (documented in the action.yml description). */
  readonly maxMs?: number;
  /** Turns the raw text (already trimmed, never empty) into the value; throws InputError on bad text. */
  readonly parse: (raw: string, name: string) => T;
}

/** Whether options make an input always present (required or defaulted). */
export type Present<O> = O extends { required: true } ? true : O extends { default: string } ? true : false;

export type Options<T> = {
  required?: boolean;
  default?: string;
  secret?: boolean;
  accepted?: string;
  check?: (value: T, name: string) => void;
};

export function field<T>(
  kind: string,
  accepted: string,
  parse: (raw: string, name: string) => T,
  options: Options<T> = {},
): InputField<T, never> {
  const check = options.check;
  return {
    kind,
    required: options.required ?? false,
    secret: options.secret ?? false,
    defaultValue: options.default,
    accepted: options.accepted ?? accepted,
    parse: check
      ? (raw, name) => {
          const value = parse(raw, name);
          check(value, name);
          return value;
        }
      : parse,
  };
}

const quote = (raw: string) => JSON.stringify(raw.length > 80 ? `${raw.slice(0, 77)}...` : raw);

/** Splits on newlines or commas, trims, drops blanks and `#` comment lines. */
function splitList(raw: string): string[] {
  return raw
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter((s) => s !== '' && !s.startsWith('#'));
}

export const input = {
  string<const O extends Options<string> & { pattern?: RegExp }>(
    options: O = {} as O,
  ): InputField<string, Present<O>> {
    const pattern = options.pattern;
    return field(
      'string',
      pattern ? `text matching ${pattern}` : 'text',
      (raw, name) => {
        if (pattern && !pattern.test(raw))
          throw new InputError(
            name,
            `has ${quote(raw)}, which does not match`,
            options.accepted ?? `text matching ${pattern}`,
          );
        return raw;
      },
      options,
    );
  },

  /**
   * A Kubernetes object name, by the one rule of kube-names.ts. `max` lowers the limit for
   * a name the action extends (`<deployment>-canary` is a Service name too); `maxWhy` says why.
   */
  kubeName<const O extends Options<string> & { max?: number; maxWhy?: string }>(
    options: O = {} as O,
  ): InputField<string, Present<O>> {
    const max = Math.min(options.max ?? KUBE_NAME_MAX, KUBE_NAME_MAX);
    const form =
      max === KUBE_NAME_MAX
        ? KUBE_NAME_FORM
        : KUBE_NAME_FORM.replace(`at most ${KUBE_NAME_MAX}`, `at most ${max}`) +
          (options.maxWhy ? ` (${options.maxWhy})` : '');
    const accepted = options.accepted ?? form;
    return field(
      'string',
      accepted,
      (raw, name) => {
        if (raw.length > max)
          throw new InputError(name, `has ${quote(raw)}, ${raw.length} characters long`, accepted);
        if (!KUBE_NAME.test(raw))
          throw new InputError(name, `has ${quote(raw)}, which does not match`, accepted);
        return raw;
      },
      options,
    );
  },

  /**
   * A secret. A URL in it has its user info masked too, and with `pathIsSecret` (webhooks, whose
   * path is the credential) its path, so a body that echoes only the path shows nothing.
   */
  secret<const O extends Options<string> & { pathIsSecret?: boolean }>(
    options: O = {} as O,
  ): InputField<string, Present<O>> {
    // A webhook URL is its own credential: user info in it is a mistake (fetch refuses such a URL,
    // so every retry would fail the same way), refused here rather than found out by posting.
    const parse = options.pathIsSecret
      ? (raw: string, name: string) => {
          let url: URL | undefined;
          try {
            url = new URL(raw);
          } catch {
            url = undefined;
          }
          if (url && (url.username || url.password))
            throw new InputError(
              name,
              'has a URL with user info (user:password@)',
              'a webhook URL without user info; its path is the credential',
            );
          return raw;
        }
      : (raw: string) => raw;
    return {
      ...field('secret', 'a secret value', parse, { ...options, secret: true }),
      secretsOf: (raw) => [...urlUserInfoSecrets(raw), ...(options.pathIsSecret ? urlPathSecrets(raw) : [])],
    };
  },

  boolean<const O extends Options<boolean>>(options: O = {} as O): InputField<boolean, Present<O>> {
    // The booleans GitHub's own getBooleanInput reads: yes/no, on/off and 1/0 are refused rather
    // than guessed, so `dry-run: no` in one step and `dry-run: false` in another mean what they say.
    const accepted = options.accepted ?? 'true or false';
    return field(
      'boolean',
      accepted,
      (raw, name) => {
        if (['true', 'True', 'TRUE'].includes(raw)) return true;
        if (['false', 'False', 'FALSE'].includes(raw)) return false;
        throw new InputError(name, `has ${quote(raw)}, which is not a boolean`, accepted);
      },
      options,
    );
  },

  integer<const O extends Options<number> & { min?: number; max?: number }>(
    options: O = {} as O,
  ): InputField<number, Present<O>> {
    const { min, max } = options;
    const range =
      min !== undefined && max !== undefined
        ? ` from ${min} to ${max}`
        : min !== undefined
          ? ` of at least ${min}`
          : max !== undefined
            ? ` of at most ${max}`
            : '';
    const accepted = options.accepted ?? `a whole number${range}`;
    return field(
      'integer',
      accepted,
      (raw, name) => {
        if (!/^-?\d+$/.test(raw))
          throw new InputError(name, `has ${quote(raw)}, which is not a whole number`, accepted);
        // One rule for every number: plain decimal digits, no leading zeros (007 may mean octal).
        if (/^-?0\d/.test(raw))
          throw new InputError(
            name,
            `has ${quote(raw)}, which has a leading zero`,
            `${accepted}, without leading zeros`,
          );
        const n = Number(raw);
        if ((min !== undefined && n < min) || (max !== undefined && n > max))
          throw new InputError(name, `has ${n}, which is out of range`, accepted);
        return n;
      },
      options,
    );
  },

  /**
   * Milliseconds, from the suite's one duration syntax, at most `maxMs` (24h unless the input
   * documents another maximum, such as DURATION_MAX.window for a soak).
   */
  duration<const O extends Options<number> & { minMs?: number; maxMs?: number }>(
    options: O = {} as O,
  ): InputField<number, Present<O>> {
    const limits = {
      maxMs: options.maxMs ?? DURATION_MAX.timeout,
      ...(options.minMs !== undefined ? { minMs: options.minMs } : {}),
    };
    return {
      ...field('duration', durationForm(limits), (raw, name) => parseDuration(raw, name, limits), options),
      maxMs: limits.maxMs,
    };
  },

  enum<const V extends string, const O extends Options<V> = Options<V>>(
    values: readonly V[],
    options: O = {} as O,
  ): InputField<V, Present<O>> {
    const accepted = options.accepted ?? `one of ${values.join(', ')}`;
    return field(
      'enum',
      accepted,
      (raw, name) => {
        const value = raw.toLowerCase() as V;
        if (!values.includes(value))
          throw new InputError(name, `has ${quote(raw)}, which is not a known value`, accepted);
        return value;
      },
      options,
    );
  },

  list<const O extends Options<string[]>>(options: O = {} as O): InputField<string[], Present<O>> {
    return field(
      'list',
      'a list, one item per line or separated by commas',
      (raw) => splitList(raw),
      options,
    );
  },

  /**
   * An absolute URL. Its user info (and the Basic header made from it) is masked like a secret;
   * with `httpsExceptLoopback`, plain http is refused unless the host is this machine; with
   * `public`, user info is refused altogether.
   */
  url<
    const O extends Options<string> & {
      protocols?: string[];
      httpsExceptLoopback?: boolean;
      /** Shown to everyone who can read the repository (a deployment's URL): user info is refused. */
      public?: boolean;
    },
  >(options: O = {} as O): InputField<string, Present<O>> {
    const protocols = options.protocols ?? ['http:', 'https:'];
    const accepted =
      options.accepted ??
      (options.httpsExceptLoopback
        ? 'an absolute https URL (http only to localhost or 127.0.0.1)'
        : `an absolute URL (${protocols.map((p) => p.replace(':', '')).join(' or ')})`);
    return {
      ...field(
        'url',
        accepted,
        (raw, name) => {
          let url: URL;
          try {
            url = new URL(raw);
          } catch {
            throw new InputError(
              name,
              `has ${options.secret ? 'a value' : quote(raw)} which is not a URL`,
              accepted,
            );
          }
          if (!protocols.includes(url.protocol))
            throw new InputError(name, `has a ${url.protocol} URL`, accepted);
          if (options.public && (url.username || url.password))
            throw new InputError(
              name,
              'has user info (user:password@), which GitHub would show to everyone who can read the repository',
              `${accepted}, without credentials`,
            );
          if (options.httpsExceptLoopback && url.protocol === 'http:' && !isLoopbackHost(url.hostname))
            throw new InputError(
              name,
              `has a plain http URL to ${url.hostname}, which would send it in clear`,
              accepted,
            );
          return raw;
        },
        options,
      ),
      secretsOf: urlUserInfoSecrets,
    };
  },

  /** `key=value` pairs, one per line or comma-separated; order is kept (stages are ordered). */
  map<const O extends Options<Map<string, string>> & { keyPattern?: RegExp }>(
    options: O = {} as O,
  ): InputField<Map<string, string>, Present<O>> {
    const keyPattern = options.keyPattern ?? /^[A-Za-z0-9_.\-/]+$/;
    const accepted = 'key=value pairs, one per line or separated by commas';
    return field(
      'map',
      accepted,
      (raw, name) => {
        const map = new Map<string, string>();
        for (const item of splitList(raw)) {
          const eq = item.indexOf('=');
          const key = eq > 0 ? item.slice(0, eq).trim() : '';
          if (!key || !keyPattern.test(key)) {
            throw new InputError(
              name,
              `has ${options.secret ? 'an entry' : quote(item)} which is not key=value`,
              options.accepted ?? accepted,
            );
          }
          if (map.has(key))
            throw new InputError(name, `sets ${quote(key)} twice`, options.accepted ?? accepted);
          map.set(key, item.slice(eq + 1).trim());
        }
        return map;
      },
      options,
    );
  },
};

// biome-ignore lint/suspicious/noExplicitAny: a schema holds fields of every value type
export type Schema = Record<string, InputField<any>>;

type Camel<S extends string> = S extends `${infer Head}-${infer Tail}`
  ? `${Head}${Capitalize<Camel<Tail>>}`
  : S;

/** The parsed options: inputs become camelCase keys; optional inputs without a default may be undefined. */
export type Inputs<S extends Schema> = {
  [K in keyof S & string as Camel<K>]: S[K] extends InputField<infer T, infer P>
    ? P extends true
      ? T
      : T | undefined
    : never;
};

export function defineInputs<const S extends Schema>(schema: S): S {
  return schema;
}

function camelCase(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/**
 * Reads and validates every input before the action does anything. Secrets are passed to `mask`
 * first, so even an error about a malformed secret cannot print it.
 */
export function parseInputs<S extends Schema>(
  schema: S,
  getInput: (name: string) => string,
  mask: (secret: string) => void = () => {},
): Inputs<S> {
  const raws = new Map<string, string>();
  for (const [name, f] of Object.entries(schema)) {
    const raw = getInput(name).trim();
    if (f.secret && raw) {
      mask(raw);
      for (const line of raw.split('\n')) if (line.trim()) mask(line.trim());
    }
    if (raw && f.secretsOf) for (const derived of f.secretsOf(raw)) mask(derived);
    raws.set(name, raw);
  }
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(schema)) {
    const raw = raws.get(name) || f.defaultValue || '';
    if (!raw) {
      if (f.required) throw new InputError(name, 'is required but was not set', f.accepted);
      out[camelCase(name)] = undefined;
      continue;
    }
    out[camelCase(name)] = f.parse(raw, name);
  }
  return out as Inputs<S>;
}
