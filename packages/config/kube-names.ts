/**
 * Kubernetes' name rules, written once: every input, check or label key that names something in a
 * cluster is held to these before anything is sent, because a name that passed a looser pattern
 * would fail at the API server halfway through a run.
 *
 * - A DNS-1123 label (namespaces, Services, container names): lowercase letters, digits and `-`,
 *   starting and ending with a letter or digit, at most 63 characters. Every object name we take is
 *   held to it: a Deployment's own name may be a longer subdomain, but the Service named after it,
 *   the label values made from it and the names we build on it (`<app>-canary`, `<app>-blue`) are
 *   capped at 63.
 * - A DNS-1123 subdomain (a label key's prefix, a Lease name): labels joined by `.`, at most 253.
 * - A label key: an optional subdomain prefix and `/`, then a name of letters, digits, `-`, `_` and
 *   `.`, starting and ending with a letter or digit, at most 63 characters.
 */

const LABEL = '[a-z0-9](?:[-a-z0-9]*[a-z0-9])?';
const SUBDOMAIN = `${LABEL}(?:\\.${LABEL})*`;
const KEY_NAME = '[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?';

/** The pattern of a DNS-1123 label, for a pattern that has one inside (`namespace/name:port`). */
export const KUBE_NAME_PATTERN = LABEL;
export const KUBE_NAME = new RegExp(`^${LABEL}$`);
export const KUBE_NAME_MAX = 63;
export const KUBE_NAME_FORM = `a Kubernetes name: lowercase letters, digits and -, starting and ending with a letter or digit, at most ${KUBE_NAME_MAX} characters`;

/** The pattern of a DNS-1123 subdomain, for a pattern that has one inside (`deployment/<name>`). */
export const DNS_SUBDOMAIN_PATTERN = SUBDOMAIN;
const DNS_SUBDOMAIN_MAX = 253;

const LABEL_KEY = new RegExp(`^(?:(${SUBDOMAIN})/)?(${KEY_NAME})$`);
/** Whether a text is a label key the API server takes (`color`, `pipeline.dev/track`). */
export function isLabelKey(key: string): boolean {
  const m = LABEL_KEY.exec(key);
  return !!m && (m[1]?.length ?? 0) <= DNS_SUBDOMAIN_MAX && m[2]!.length <= KUBE_NAME_MAX;
}
