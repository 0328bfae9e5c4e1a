/**
 * @Locked overhead over HTTP: a NestJS app (child process) serves the same trivial handler as
 * is (/plain), under @Locked (/locked, a fresh key per request so nothing waits) and making the
 * two etcd writes a lock needs itself through the module's etcd3 client (/raw: the floor, in the
 * same process); the same app on the in-memory lock client shows what the Nest layer costs
 * without etcd. autocannon drives it from this process; per-request latency comes from
 * autocannon's 'response' events (sub-millisecond), the app's CPU per request from its /cpu.
 */
import http from 'node:http';
import autocannon from 'autocannon';
import { nodeWorker } from '../lib/procs.js';
import { summarize, type Summary } from '../lib/stats.js';

/** Every route of the app, in the order the tables list them. */
export const ROUTES = ['plain', 'intercepted', 'locked', 'service', 'intercepted-service', 'raw', 'guarded'] as const;
export type Route = (typeof ROUTES)[number];

export interface RouteLoad {
  latency: Summary;
  rps: number;
  errors: number;
  /** The app's CPU time per request, µs. */
  cpuUs: number;
}

export interface HttpRound {
  round: number;
  connections: number;
  routes: Partial<Record<Route, RouteLoad>>;
}

function getJson(url: string): Promise<{ user: number; system: number }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, res => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve(JSON.parse(body) as { user: number; system: number }));
      })
      .on('error', reject);
  });
}

async function load(base: string, route: Route, connections: number, durationSec: number): Promise<RouteLoad> {
  const latencies: number[] = [];
  const cpu0 = await getJson(`${base}/cpu`);
  const instance = autocannon({ url: `${base}/${route}/[<id>]`, connections, duration: durationSec, idReplacement: true });
  instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => latencies.push(responseTime));
  const result = await instance;
  const cpu1 = await getJson(`${base}/cpu`);
  return {
    latency: summarize(latencies),
    rps: latencies.length / durationSec,
    errors: result.errors + result.non2xx + result.timeouts,
    cpuUs: (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / Math.max(1, latencies.length),
  };
}

/** `inMemory`: the app runs on the in-memory lock client, so only the routes that need no etcd can be planned. */
export async function runHttp(
  endpoint: string,
  rounds: number,
  durationSec: number,
  plan: { connections: number; routes: Route[] }[],
  { inMemory = false } = {},
): Promise<HttpRound[]> {
  const app = nodeWorker(inMemory ? 'http app (in-memory)' : 'http app', 'http-app.js', { endpoint, inMemory });
  try {
    const port = Number((await app.line('ready')).split(' ')[1]);
    const base = `http://127.0.0.1:${port}`;
    // Warm up every planned route (JIT, connections, the lease).
    for (const route of new Set(plan.flatMap(p => p.routes))) await load(base, route, 4, 1);
    const out: HttpRound[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const { connections, routes } of plan) {
        const order = routes.map((_, i) => routes[(i + round) % routes.length]);
        const result: HttpRound = { round, connections, routes: {} };
        for (const route of order) result.routes[route] = await load(base, route, connections, durationSec);
        out.push(result);
      }
    }
    return out;
  } finally {
    await app.stop();
  }
}
