/** Kubernetes Status objects: every API error kube-sim answers is one of these. */
import { qualifiedName, type ResourceInfo } from './resources.ts';

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
  type?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details: StatusDetails | undefined;
  readonly headers: Record<string, string>;
  constructor(
    code: number,
    reason: string,
    message: string,
    details?: StatusDetails,
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.reason = reason;
    this.details = details;
    this.headers = headers;
  }

  toStatus(): Record<string, unknown> {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      ...(this.reason ? { reason: this.reason } : {}),
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

function detailsOf(r: ResourceInfo, name?: string): StatusDetails {
  return { ...(name ? { name } : {}), group: r.group, kind: r.plural };
}

export function notFound(r: ResourceInfo, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${qualifiedName(r)} "${name}" not found`, detailsOf(r, name));
}

export function namespaceNotFound(ns: string): ApiError {
  return new ApiError(404, 'NotFound', `namespaces "${ns}" not found`, { name: ns, kind: 'namespaces' });
}

export function alreadyExists(r: ResourceInfo, name: string): ApiError {
  return new ApiError(
    409,
    'AlreadyExists',
    `${qualifiedName(r)} "${name}" already exists`,
    detailsOf(r, name),
  );
}

export function conflict(r: ResourceInfo, name: string, why: string): ApiError {
  return new ApiError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualifiedName(r)} "${name}": ${why}`,
    detailsOf(r, name),
  );
}

export const STALE_OBJECT =
  'the object has been modified; please apply your changes to the latest version and try again';

export function invalid(r: ResourceInfo, name: string, causes: StatusCause[]): ApiError {
  const kind = r.group ? `${r.kind}.${r.group}` : r.kind;
  const text =
    causes.length === 1
      ? `${causes[0]!.field}: ${causes[0]!.message}`
      : `[${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}]`;
  return new ApiError(422, 'Invalid', `${kind} "${name}" is invalid: ${text}`, {
    ...detailsOf(r, name),
    kind: r.kind,
    causes,
  });
}

export function badRequest(message: string): ApiError {
  return new ApiError(400, 'BadRequest', message);
}

export function unauthorized(): ApiError {
  return new ApiError(401, 'Unauthorized', 'Unauthorized');
}

export function methodNotAllowed(): ApiError {
  return new ApiError(
    405,
    'MethodNotAllowed',
    'the server does not allow this method on the requested resource',
  );
}

export function notFoundPath(): ApiError {
  return new ApiError(404, 'NotFound', 'the server could not find the requested resource');
}

export function gone(requested: string, current: number): ApiError {
  return new ApiError(410, 'Expired', `too old resource version: ${requested} (${current})`);
}

export function injected(code: number, retryAfterSeconds?: number): ApiError {
  const retry: { details: StatusDetails | undefined; headers: Record<string, string> } =
    retryAfterSeconds !== undefined && (code === 429 || code === 503)
      ? { details: { retryAfterSeconds }, headers: { 'Retry-After': String(retryAfterSeconds) } }
      : { details: undefined, headers: {} };
  switch (code) {
    case 429:
      return new ApiError(
        429,
        'TooManyRequests',
        'Too many requests, please try again later.',
        retry.details,
        retry.headers,
      );
    case 503:
      return new ApiError(
        503,
        'ServiceUnavailable',
        'The server is currently unable to handle the request (injected fault)',
        retry.details,
        retry.headers,
      );
    case 504:
      return new ApiError(504, 'Timeout', 'The server was unable to return a response in the time allotted');
    default:
      return new ApiError(
        code,
        'InternalError',
        'Internal error occurred: injected fault',
        { causes: [{ message: 'injected fault' }] },
        retry.headers,
      );
  }
}
