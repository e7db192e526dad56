/** Per-pod and per-image request counters and latency histograms, in Prometheus text format. */

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface RequestLabels {
  namespace: string;
  service: string;
  pod: string;
  image: string;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(labels: Record<string, string>): string {
  return `{${Object.entries(labels)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(',')}}`;
}

interface Histogram {
  labels: Record<string, string>;
  buckets: number[];
  sum: number;
  count: number;
}

export class ProxyMetrics {
  private readonly requests = new Map<string, { labels: Record<string, string>; value: number }>();
  private readonly imageRequests = new Map<string, { labels: Record<string, string>; value: number }>();
  private readonly durations = new Map<string, Histogram>();

  observe(l: RequestLabels, code: number, seconds: number): void {
    const full = {
      namespace: l.namespace,
      service: l.service,
      pod: l.pod,
      image: l.image,
      code: String(code),
    };
    const key = JSON.stringify(full);
    const c = this.requests.get(key) ?? { labels: full, value: 0 };
    c.value++;
    this.requests.set(key, c);
    const imageLabels = { image: l.image, code: String(code) };
    const ik = JSON.stringify(imageLabels);
    const ic = this.imageRequests.get(ik) ?? { labels: imageLabels, value: 0 };
    ic.value++;
    this.imageRequests.set(ik, ic);
    const hl = { namespace: l.namespace, service: l.service, pod: l.pod, image: l.image };
    const hk = JSON.stringify(hl);
    const h = this.durations.get(hk) ?? { labels: hl, buckets: BUCKETS.map(() => 0), sum: 0, count: 0 };
    BUCKETS.forEach((b, i) => {
      if (seconds <= b) h.buckets[i]!++;
    });
    h.sum += seconds;
    h.count++;
    this.durations.set(hk, h);
  }

  /** Requests a pod answered, by code: what the pod's own /metrics shows. */
  podCounts(namespace: string, pod: string): Map<string, number> {
    const out = new Map<string, number>();
    for (const c of this.requests.values()) {
      if (c.labels['namespace'] === namespace && c.labels['pod'] === pod) {
        out.set(c.labels['code']!, (out.get(c.labels['code']!) ?? 0) + c.value);
      }
    }
    return out;
  }

  text(): string {
    const lines: string[] = [];
    lines.push(
      '# HELP kubesim_http_requests_total HTTP requests answered by simulated pods through the service proxy.',
    );
    lines.push('# TYPE kubesim_http_requests_total counter');
    for (const c of this.requests.values())
      lines.push(`kubesim_http_requests_total${labelText(c.labels)} ${c.value}`);
    lines.push('# HELP kubesim_image_http_requests_total HTTP requests answered, by image.');
    lines.push('# TYPE kubesim_image_http_requests_total counter');
    for (const c of this.imageRequests.values())
      lines.push(`kubesim_image_http_requests_total${labelText(c.labels)} ${c.value}`);
    lines.push('# HELP kubesim_http_request_duration_seconds Simulated response latency of simulated pods.');
    lines.push('# TYPE kubesim_http_request_duration_seconds histogram');
    for (const h of this.durations.values()) {
      BUCKETS.forEach((b, i) => {
        lines.push(
          `kubesim_http_request_duration_seconds_bucket${labelText({ ...h.labels, le: String(b) })} ${h.buckets[i]}`,
        );
      });
      lines.push(
        `kubesim_http_request_duration_seconds_bucket${labelText({ ...h.labels, le: '+Inf' })} ${h.count}`,
      );
      lines.push(`kubesim_http_request_duration_seconds_sum${labelText(h.labels)} ${h.sum}`);
      lines.push(`kubesim_http_request_duration_seconds_count${labelText(h.labels)} ${h.count}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

/** A small seedable PRNG (mulberry32), so error rates and balancing can be reproduced. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
