/** etcd's Prometheus /metrics, read over plain HTTP. */
import http from 'node:http';

/** Prometheus text from etcd's /metrics: sample name (with labels) → value. */
export async function scrapeMetrics(endpoint: string): Promise<Map<string, number>> {
  const body = await httpGet(`${endpoint}/metrics`);
  const metrics = new Map<string, number>();
  for (const line of body.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const space = line.lastIndexOf(' ');
    metrics.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return metrics;
}

/** A gRPC method's received-message counter, e.g. grpcReceived(m, 'LeaseKeepAlive'). */
export function grpcReceived(metrics: Map<string, number>, method: string): number {
  for (const [name, value] of metrics) {
    if (name.startsWith('grpc_server_msg_received_total{') && name.includes(`grpc_method="${method}"`)) return value;
  }
  return 0;
}

/** All unary calls etcd started (grpc_server_started_total{grpc_type="unary"}), every method. */
export function grpcUnaryStarted(metrics: Map<string, number>): number {
  let total = 0;
  for (const [name, value] of metrics) {
    if (name.startsWith('grpc_server_started_total{') && name.includes('grpc_type="unary"')) total += value;
  }
  return total;
}

export function grpcSent(metrics: Map<string, number>, method: string): number {
  for (const [name, value] of metrics) {
    if (name.startsWith('grpc_server_msg_sent_total{') && name.includes(`grpc_method="${method}"`)) return value;
  }
  return 0;
}

export function httpGet(url: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, res => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

/**
 * The change of a Prometheus histogram between two scrapes, with a quantile estimate: the upper
 * bound of the bucket where the quantile falls (etcd's buckets double: 1 ms, 2 ms, 4 ms, ...).
 */
export function histogramDelta(before: Map<string, number>, after: Map<string, number>, name: string) {
  const buckets: { le: number; count: number }[] = [];
  for (const [key, value] of after) {
    const m = new RegExp(`^${name}_bucket\\{.*le="([^"]+)"`).exec(key);
    if (m) buckets.push({ le: m[1] === '+Inf' ? Infinity : Number(m[1]), count: value - (before.get(key) ?? 0) });
  }
  buckets.sort((a, b) => a.le - b.le);
  const count = (after.get(`${name}_count`) ?? 0) - (before.get(`${name}_count`) ?? 0);
  const sum = (after.get(`${name}_sum`) ?? 0) - (before.get(`${name}_sum`) ?? 0);
  return {
    count,
    mean: count ? sum / count : NaN,
    quantile(q: number): number {
      if (!count) return NaN;
      const target = q * count;
      for (const b of buckets) if (b.count >= target) return b.le;
      return Infinity;
    },
  };
}
