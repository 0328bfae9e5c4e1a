/**
 * Many-resources worker (run with --expose-gc): one EtcdLockClient takes 1,000 then 10,000
 * distinct locks and holds them. At each level: heap per held lock (after full GCs), the
 * acquire rate, and, over a window, the keepalive requests etcd received (server-side metric)
 * and the process's CPU while just holding. Prints one JSON line.
 */
import { EtcdLockClient, type LockHandle } from '../../lib/core/index.js';
import { grpcReceived, scrapeMetrics } from '../lib/metrics.js';
import { finish } from '../lib/procs.js';

interface Config {
  endpoint: string;
  levels: number[];
  ttl: number;
  windowMs: number;
  concurrency: number;
}

export interface ManyLevel {
  held: number;
  acquirePerSec: number;
  heapPerLockBytes: number;
  heapUsedBytes: number;
  externalPerLockBytes: number;
  keepAlivesPerSec: number;
  /** LeaseKeepAlive messages etcd received during the window. */
  keepAlives: number;
  leaseTimeToLivePerSec: number;
  leases: number;
  cpuMsPerSec: number;
  auditCallMs: number;
  auditKeys: number;
}

const config = JSON.parse(process.argv[2]) as Config;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

function fullGc(): void {
  for (let i = 0; i < 3; i++) gc!();
}

const client = new EtcdLockClient({ hosts: config.endpoint, ttl: config.ttl, waitTimeout: 60_000, prefix: 'bench/many/' });
await client.connect();
const leaseDec = BigInt(`0x${client.status().leaseId}`).toString();

async function runPool<T>(count: number, work: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(config.concurrency, count) }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await work(i);
      }
    }),
  );
  return out;
}

// Warm up the code paths (JIT, gRPC buffers) so that the baseline heap includes them.
const warm = await runPool(1000, i => client.acquire(`warm-${i}`));
await runPool(warm.length, async i => warm[i].release());
await new Promise(r => setTimeout(r, 200));
fullGc();
const base = process.memoryUsage();

async function window(held: number, acquirePerSec: number): Promise<ManyLevel> {
  fullGc();
  const mem = process.memoryUsage();
  const m0 = await scrapeMetrics(config.endpoint);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise(r => setTimeout(r, config.windowMs));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const m1 = await scrapeMetrics(config.endpoint);
  const auditStart = performance.now();
  const ttl = await client.etcd.leaseClient.leaseTimeToLive({ ID: leaseDec, keys: true });
  const auditCallMs = performance.now() - auditStart;
  const leases = (await client.etcd.leaseClient.leaseLeases()).leases.length;
  return {
    held,
    acquirePerSec,
    heapPerLockBytes: held ? (mem.heapUsed - base.heapUsed) / held : 0,
    heapUsedBytes: mem.heapUsed,
    externalPerLockBytes: held ? (mem.external - base.external) / held : 0,
    keepAlivesPerSec: (grpcReceived(m1, 'LeaseKeepAlive') - grpcReceived(m0, 'LeaseKeepAlive')) / seconds,
    keepAlives: grpcReceived(m1, 'LeaseKeepAlive') - grpcReceived(m0, 'LeaseKeepAlive'),
    leaseTimeToLivePerSec: (grpcReceived(m1, 'LeaseTimeToLive') - grpcReceived(m0, 'LeaseTimeToLive')) / seconds,
    leases,
    cpuMsPerSec: (cpu.user + cpu.system) / 1000 / seconds,
    auditCallMs,
    auditKeys: ttl.keys.length,
  };
}

const levels: ManyLevel[] = [await window(0, NaN)];
const held: LockHandle[] = [];
for (const level of config.levels) {
  const more = level - held.length;
  const t0 = performance.now();
  const offset = held.length;
  held.push(...(await runPool(more, i => client.acquire(`r-${offset + i}`))));
  const acquirePerSec = more / ((performance.now() - t0) / 1000);
  levels.push(await window(held.length, acquirePerSec));
}
const t0 = performance.now();
await runPool(held.length, async i => held[i].release());
const releasePerSec = held.length / ((performance.now() - t0) / 1000);
held.length = 0;
await client.close();
finish({ levels, releasePerSec, baseHeapBytes: base.heapUsed, windowMs: config.windowMs });
