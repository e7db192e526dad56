/** The shapes kube-sim works with: loose Kubernetes objects plus the behaviour and fault tables. */

export type JsonObject = { [key: string]: unknown };

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export type FieldsV1 = { [key: string]: FieldsV1 };

export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: FieldsV1;
  subresource?: string;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  managedFields?: ManagedFieldsEntry[];
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

export type PodMode = 'ready' | 'crash' | 'pull-error' | 'unschedulable' | 'never-ready';

export interface HttpBehaviour {
  /** Status for every request (default 200); /health answers it too, with `health` as the body. */
  status?: number;
  /** Share of requests (0..1) answered with 500. */
  errorRate?: number;
  /** Simulated response latency, in simulated milliseconds (divided by timeScale when waited). */
  latencyMs?: number;
  /** JSON body for GET /health (default {"status":"ok"}). */
  health?: unknown;
  /** JSON body for any other path (default: who answered). */
  body?: unknown;
}

export interface ImageBehaviour {
  /** A glob over the whole image reference ('registry/app:bad-*', '*:v2') or a RegExp. */
  pattern: string | RegExp;
  mode?: PodMode;
  /** Image pull time (simulated ms, default 300). */
  pullMs?: number;
  /** From pulled to container running (simulated ms, default 500). */
  startupMs?: number;
  /** From running to ready (simulated ms, default 500). */
  readyMs?: number;
  /** For mode 'crash': how long the container runs before it exits (simulated ms, default 1000). */
  crashAfterMs?: number;
  http?: HttpBehaviour;
  /** For pods that do not restart (Jobs): exit 0 or 1 after jobDurationMs. */
  jobOutcome?: 'succeed' | 'fail';
  jobDurationMs?: number;
}

export interface FaultMatch {
  /** get, list, watch, create, update, patch, delete, deletecollection, proxy */
  verb?: string;
  /** plural resource name, optionally with subresource: 'deployments', 'deployments/scale' */
  resource?: string;
  /** A RegExp source (or RegExp) tested against the request path. */
  pathPattern?: string | RegExp;
}

export interface FaultPlan {
  /** Share of matching requests (0..1) that fail. */
  errorRate?: number;
  /** Statuses to fail with, picked at random (default [500]); 500, 503 and 429 have real Status bodies. */
  statuses?: number[];
  /** Retry-After header (and details.retryAfterSeconds) on 429 and 503. */
  retryAfterSeconds?: number;
  /** Added latency on every matching request, real milliseconds. */
  latencyMs?: number;
  match?: FaultMatch;
  /** Fail exactly the next N matching requests, then behave. */
  failNext?: number;
  /** Close every watch this many real milliseconds after it starts. */
  dropWatchesAfterMs?: number;
}

export interface SimUser {
  token: string;
  name: string;
  /** Namespaces this user may touch; absent means every namespace (but not cluster-scoped writes). */
  namespaces?: string[];
}
