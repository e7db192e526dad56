/** The fault plan: injected API errors, latency and dropped watches on matching requests. */
import { type ApiError, injected } from './status.ts';
import type { FaultPlan } from './types.ts';

export interface RequestInfo {
  verb: string;
  /** plural, or plural/subresource */
  resource: string;
  path: string;
  /** Discovery, version and OpenAPI requests are only faulted when pathPattern names them. */
  discovery: boolean;
}

export class Faults {
  private plan: FaultPlan = {};
  private remaining = 0;
  private readonly random: () => number;
  /** Requests failed so far, for tests that count them. */
  injectedCount = 0;

  constructor(random: () => number, plan?: FaultPlan) {
    this.random = random;
    this.set(plan ?? {});
  }

  set(plan: FaultPlan): void {
    this.plan = { ...plan };
    this.remaining = plan.failNext ?? 0;
  }

  get current(): FaultPlan {
    return { ...this.plan, ...(this.plan.failNext !== undefined ? { failNext: this.remaining } : {}) };
  }

  get dropWatchesAfterMs(): number | undefined {
    return this.plan.dropWatchesAfterMs;
  }

  matches(info: RequestInfo): boolean {
    const m = this.plan.match;
    if (m?.pathPattern !== undefined) {
      const re = typeof m.pathPattern === 'string' ? new RegExp(m.pathPattern) : m.pathPattern;
      if (!re.test(info.path)) return false;
    } else if (info.discovery) return false;
    if (m?.verb && m.verb.toLowerCase() !== info.verb) return false;
    if (m?.resource && m.resource !== info.resource && m.resource !== info.resource.split('/')[0])
      return false;
    return true;
  }

  /** Latency to add and the error to answer with, if any. */
  check(info: RequestInfo): { latencyMs: number; error?: ApiError } {
    if (!this.matches(info)) return { latencyMs: 0 };
    const latencyMs = this.plan.latencyMs ?? 0;
    let fail = false;
    if (this.remaining > 0) {
      this.remaining--;
      fail = true;
    } else if (this.plan.errorRate !== undefined && this.plan.errorRate > 0) {
      fail = this.random() < this.plan.errorRate;
    }
    if (!fail) return { latencyMs };
    const statuses = this.plan.statuses?.length ? this.plan.statuses : [500];
    const code = statuses[Math.floor(this.random() * statuses.length)]!;
    this.injectedCount++;
    return { latencyMs, error: injected(code, this.plan.retryAfterSeconds) };
  }
}
