import { basicAuthorization, headerSecrets, urlQuerySecrets, urlUserInfoSecrets } from '../core/index.ts';

/**
 * What in a kubeconfig is a credential, found the same way in the YAML text (masked before any
 * input is parsed) and in the loaded KubeConfig (a file, or the runner's default). The values are
 * masked, never the structure: masking `users:` or `kind: Config` would blank every log line that
 * mentions a kind.
 */

// Names of fields, exec env variables and flags that hold a credential.
const SECRET_NAME = /token|secret|passw|pwd|credential|private|key|auth|session|cookie|signature/i;
// Names that match the above and are not credentials.
const NOT_SECRET =
  /^(client-id|idp-issuer-url|idp-certificate-authority|cmd-path|cmd-args|expiry|expiry-key|token-key|auth-provider|apiVersion|name|command)$/i;
// A value that looks like a token whatever it is called: 12 or more characters without spaces,
// letters and digits both (an exec plugin's `--token abc…` or a key pasted as an argument).
const TOKEN_LIKE = /^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9._~+/=:-]{12,}$/;

/** Whether a kubeconfig input is the YAML itself rather than a path. */
export function looksLikeKubeconfigContent(value: string): boolean {
  return /\n/.test(value) && /(apiVersion|clusters)\s*:/.test(value);
}

type Loose = Record<string, unknown>;
const asRecord = (v: unknown): Loose | undefined =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Loose) : undefined;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function secretLike(name: string | undefined, value: string): boolean {
  if (value.length < 3) return false;
  if (name && SECRET_NAME.test(name) && !NOT_SECRET.test(name)) return true;
  return TOKEN_LIKE.test(value) && !/^https?:\/\//.test(value);
}

/** The secrets of one user entry, in YAML spelling (client-key-data) or client-node's (keyData). */
export function kubeconfigUserSecrets(user: unknown): string[] {
  const u = asRecord(user);
  if (!u) return [];
  const out: string[] = [];
  for (const key of [
    'token',
    'password',
    'client-key-data',
    'keyData',
    'client-certificate-data',
    'certData',
  ]) {
    const v = str(u[key]);
    if (v) {
      out.push(v);
      // The PEM inside base64 data, should a TLS error quote it.
      if (key.endsWith('-data') || key.endsWith('Data'))
        out.push(
          ...Buffer.from(v, 'base64')
            .toString('utf8')
            .split('\n')
            .filter((l) => l.length >= 16 && !l.startsWith('-----')),
        );
    }
  }
  const username = str(u.username);
  const password = str(u.password);
  if (username && password) out.push(...headerSecrets(basicAuthorization(username, password)));
  const exec = asRecord(u.exec);
  if (exec) {
    const args = Array.isArray(exec.args) ? exec.args.map(String) : [];
    for (const [i, arg] of args.entries()) {
      const flag = /^--?([\w-]+)=(.+)$/.exec(arg);
      if (flag) {
        if (secretLike(flag[1], flag[2]!)) out.push(flag[2]!);
        continue;
      }
      const previous = /^--?([\w-]+)$/.exec(args[i - 1] ?? '')?.[1];
      if (secretLike(previous, arg)) out.push(arg);
    }
    for (const entry of Array.isArray(exec.env) ? exec.env : []) {
      const e = asRecord(entry);
      const value = str(e?.value);
      if (value && secretLike(str(e?.name), value)) out.push(value);
    }
  }
  const provider = asRecord(u['auth-provider']) ?? asRecord(u.authProvider);
  const config = asRecord(provider?.config);
  for (const [name, value] of Object.entries(config ?? {}))
    if (typeof value === 'string' && secretLike(name, value)) out.push(value);
  return out;
}

/** The secrets of a cluster's server URL: user info and credential query parameters. */
export function serverSecrets(server: unknown): string[] {
  const url = str(server);
  return url ? [...urlUserInfoSecrets(url), ...urlQuerySecrets(url)] : [];
}

/**
 * The secrets of a kubeconfig as written, from its parsed YAML (`doc`); when the text does not
 * parse, from its lines: the value of every `secret-name: value` line and every token-like word.
 */
export function kubeconfigTextSecrets(text: string, doc: unknown): string[] {
  const out: string[] = [];
  const d = asRecord(doc);
  if (d) {
    for (const entry of Array.isArray(d.users) ? d.users : [])
      out.push(...kubeconfigUserSecrets(asRecord(entry)?.user));
    for (const entry of Array.isArray(d.clusters) ? d.clusters : [])
      out.push(...serverSecrets(asRecord(asRecord(entry)?.cluster)?.server));
  } else {
    for (const line of text.split('\n')) {
      const m = /^\s*-?\s*([\w-]+)\s*:\s*(.*?)\s*$/.exec(line);
      if (m?.[2] && secretLike(m[1], m[2].replace(/^["']|["']$/g, '')))
        out.push(m[2].replace(/^["']|["']$/g, ''));
      for (const word of line.split(/[\s"',[\]{}]+/)) if (secretLike(undefined, word)) out.push(word);
      out.push(...serverSecrets(/https?:\/\/\S+/.exec(line)?.[0]));
    }
  }
  return [...new Set(out.filter((s) => s.length >= 3))];
}
