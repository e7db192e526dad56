/**
 * What a credential turns into on its way out: the parts of a URL's user info (as written and
 * decoded), the Basic header made from them, the path of a webhook URL. Everything here is
 * registered as a mask before anything can print it, and what is printed anyway (a URL in a
 * summary) is shown with its user info redacted.
 */

/** The value of a Basic Authorization header for a user and password, as fetch would send it. */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** Every form of one credential that could end up in text: as given, its Basic header, decoded. */
function basicSecrets(username: string, password: string): string[] {
  const header = basicAuthorization(username, password);
  return [header, header.slice('Basic '.length), `${username}:${password}`];
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The user and password a URL carries, decoded; undefined when it carries none (or is no URL). */
export function urlCredentials(raw: string): { username: string; password: string } | undefined {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return undefined;
  }
  if (!url.username && !url.password) return undefined;
  return { username: safeDecode(url.username), password: safeDecode(url.password) };
}

/**
 * The secrets a URL holds in its user info: the password (or a user name standing alone, which is
 * then the token), `user:password`, as written and decoded, and the Basic header (and its base64) a
 * client derives from them.
 */
export function urlUserInfoSecrets(raw: string): string[] {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return [];
  }
  if (!url.username && !url.password) return [];
  const user = safeDecode(url.username);
  const password = safeDecode(url.password);
  // With a password the user name is an identity, shown in many places (postgres, admin). Alone in
  // an http(s) URL (https://TOKEN@host) it is the credential itself; alone in postgres://app@db it
  // is only who connects.
  const tokenAlone = !url.password && (url.protocol === 'http:' || url.protocol === 'https:');
  const out = url.password
    ? [url.password, password, `${url.username}:${url.password}`]
    : tokenAlone
      ? [url.username, user]
      : [];
  if (!url.password && !tokenAlone) return [];
  return unique([...out, ...basicSecrets(user, password)]);
}

/** Query parameters that carry a credential by convention (presigned URLs, API keys, tokens). */
const SENSITIVE_QUERY_PARAM =
  /^(token|access_token|id_token|refresh_token|api_key|apikey|api-key|key|sig|signature|password|passwd|pwd|secret|client_secret|auth|x-amz-signature|x-amz-credential|x-amz-security-token)$/i;

/**
 * The values of a URL's credential-carrying query parameters (`?token=…`, `&sig=…`), as written
 * and decoded, to mask wherever the URL is shown (a summary, an evidence output, a probe error).
 */
export function urlQuerySecrets(raw: string): string[] {
  const out: string[] = [];
  // On the text, not a parsed URL: the value must be found as the URL was written (encoded or not).
  for (const m of raw.matchAll(/[?&]([^=&#\s]+)=([^&#\s"']+)/g)) {
    if (!SENSITIVE_QUERY_PARAM.test(safeDecode(m[1]!))) continue;
    out.push(m[2]!, safeDecode(m[2]!), safeDecode(m[2]!.replace(/\+/g, ' ')));
  }
  return unique(out);
}

/**
 * The secrets of a URL whose path is the credential (a Slack incoming webhook, most webhooks): the
 * path with its query, the path alone and its last segment, written and decoded, so an error body
 * that echoes only the path still shows nothing.
 */
export function urlPathSecrets(raw: string): string[] {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return [];
  }
  const path = url.pathname;
  if (path === '/' || path === '') return url.search ? [url.search] : [];
  const segments = path.split('/').filter(Boolean);
  const last = segments.at(-1) ?? '';
  const out = [`${path}${url.search}`, path, safeDecode(path), ...(url.search ? [url.search] : [])];
  // A segment short enough to be a word of the API (/services/) is not worth masking everywhere.
  if (last.length >= 8) out.push(last, safeDecode(last));
  return unique(out);
}

/**
 * The forms of a credential header's value that could show: the value, the part after its scheme
 * (Bearer, Basic, token) and, for Basic, `user:password` and the password it encodes (the user name
 * when there is no password).
 */
export function headerSecrets(value: string): string[] {
  const out = [value.trim()];
  const m = /^(\w+)\s+(\S+)$/.exec(value.trim());
  if (m) {
    out.push(m[2]!);
    if (m[1]!.toLowerCase() === 'basic') {
      const decoded = Buffer.from(m[2]!, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (
        colon >= 0 &&
        Buffer.from(decoded).toString('base64').replace(/=+$/, '') === m[2]!.replace(/=+$/, '')
      )
        out.push(
          decoded,
          ...(colon + 1 < decoded.length ? [decoded.slice(colon + 1)] : [decoded.slice(0, colon)]),
        );
    }
  }
  return unique(out);
}

/**
 * A URL as it may be shown: user info replaced by ***, the rest as written. Done on the text, so a
 * URL too malformed to parse (which an error message quotes) loses its credentials too.
 */
export function redactUrl(raw: string): string {
  return raw.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/?#\s@]*@/gi, '$1***@');
}

/** Replaces every secret (longest first, so a secret containing another is replaced whole) with ***. */
export function redactSecrets(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const secret of [...new Set(secrets)].sort((a, b) => b.length - a.length))
    if (secret) out = out.split(secret).join('***');
  return out;
}

/** Whether a host is this machine, where plain http cannot be read by anyone in between. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    host === '::1' ||
    /^127(?:\.\d{1,3}){3}$/.test(host) ||
    /^::ffff:127(?:\.\d{1,3}){3}$/.test(host)
  );
}

// One- and two-character pieces (a user "a") would blank out every such letter pair in a log or a
// JSON output while protecting nothing: the whole value and its encodings are masked anyway.
function unique(values: string[]): string[] {
  return [...new Set(values.filter((v) => v.length >= 3))];
}
