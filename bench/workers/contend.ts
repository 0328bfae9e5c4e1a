/**
 * Contended-handoff worker: `waiters` concurrent loops in this process, each taking and at
 * once releasing one shared resource until the duration ends. Prints "ready", starts on "go",
 * prints {records, watch, deleteEvents, cpuMs, loopDelayMs} last. Times are wall-clock ms (comparable across processes).
 *
 *   impl "ours":    one EtcdLockClient (one lease) per process, as an application has
 *   impl "oursSemaphore": the same client, each acquisition one of 3 permits of a semaphore
 *   impl "oursReadWrite": the same client, a read/write lock: every 4th waiter a writer, the others readers
 *   impl "contendedFloor": the contended floor: the least the protocol needs, in raw etcd3 calls (below)
 *   impl "redlock": redlock v4 on one Redis, its default retry delay (200 ms + up to 200 ms jitter)
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Etcd3, type IWatchResponse } from 'etcd3';
import { EtcdLockClient } from '../../lib/core/index.js';
import { finish, stdinCommands } from '../lib/procs.js';
import { wallMs } from '../lib/stats.js';
import { deleteEventTimes, diffCounts, installWatchCounter, watchCounts } from '../lib/watch-counter.js';

interface Config {
  impl: 'ours' | 'oursSemaphore' | 'oursReadWrite' | 'contendedFloor' | 'redlock';
  endpoint: string;
  redisPort?: number;
  key: string;
  waiters: number;
  durationMs: number;
}

type Record4 = [acquireStart: number, grant: number, releaseStart: number, releaseEnd: number];

const config = JSON.parse(process.argv[2]) as Config;
installWatchCounter();
const commands = stdinCommands();

interface Locker {
  /** `waiter`: the loop's index, which picks a reader or a writer for oursReadWrite. */
  acquire(key: string, waiter: number): Promise<{ release(): Promise<void> }>;
  close(): Promise<void>;
}

async function makeLocker(): Promise<Locker> {
  if (config.impl === 'ours' || config.impl === 'oursSemaphore' || config.impl === 'oursReadWrite') {
    const client = new EtcdLockClient({ hosts: config.endpoint, ttl: 10, waitTimeout: 120_000, prefix: 'bench/' });
    await client.connect();
    const options = (waiter: number) =>
      config.impl === 'oursSemaphore' ? { permits: 3 } : config.impl === 'oursReadWrite' ? { shared: waiter % 4 !== 0 } : {};
    return { acquire: (key, waiter) => client.acquire(key, options(waiter)), close: () => client.close() };
  }
  if (config.impl === 'contendedFloor') return floorLocker();
  const { Redis } = await import('ioredis');
  const { default: Redlock } = await import('redlock');
  const redis = new Redis({ host: '127.0.0.1', port: config.redisPort });
  await redis.ping();
  const redlock = new Redlock([redis], { retryCount: -1 });
  redlock.on('clientError', () => undefined);
  return {
    acquire: async key => {
      const lock = await redlock.lock(`bench:${key}`, 10_000);
      return { release: () => lock.unlock() };
    },
    close: async () => void redis.disconnect(),
  };
}

/**
 * The contended floor: the same queue as the library with nothing it could leave out. One lease per
 * process; a waiter puts its key and reads the key right ahead of it in one transaction (the two
 * newest keys by create revision: its own and that one). It watches that key from "now" (a watch from an older
 * revision would wait for etcd's 100 ms sync loop); when etcd arms the watch at the revision the
 * read saw, nothing can have been missed; else it reads once more to cover the gap, and waits for the
 * 'delete' event while that key is still the one ahead. Each wake-up costs one read; the release is
 * one delete. No timeouts, no re-check of its
 * own key, no idle watch, no fencing: what it costs is what grpc-js, etcd and the machine cost.
 */
async function floorLocker(): Promise<Locker> {
  const client = new Etcd3({ hosts: config.endpoint });
  const lease = client.lease(10, { autoKeepAlive: true });
  const leaseId = await lease.grant();
  const prefix = `bench/${config.key}/`;
  let sequence = 0;
  const queue = (limit: number, ownRevision?: number) => ({
    key: Buffer.from(prefix),
    range_end: Buffer.from(prefix.slice(0, -1) + '0'),
    sort_order: 'Descend' as const,
    sort_target: 'Create' as const,
    limit,
    max_create_revision: ownRevision === undefined ? undefined : ownRevision - 1,
    keys_only: true,
  });
  const ahead = async (ownRevision: number) => {
    const res = await client.kv.range(queue(1, ownRevision));
    return { key: res.kvs[0]?.key, revision: Number(res.header.revision) };
  };
  return {
    acquire: async () => {
      const key = `${prefix}${leaseId}_${sequence++}`;
      // Put and read in one transaction: the two newest keys are ours and the one ahead.
      const enqueued = await client.kv.txn({
        success: [{ request_put: { key: Buffer.from(key), value: Buffer.alloc(0), lease: leaseId } }, { request_range: queue(2) }],
      });
      const ownRevision = Number(enqueued.header.revision);
      let next = { key: enqueued.responses[1].response_range!.kvs[1]?.key, revision: ownRevision };
      while (next.key) {
        const watcher = client.watch().key(next.key).watcher();
        const deleted = new Promise(resolve => watcher.once('delete', resolve));
        const armed = await new Promise<IWatchResponse>(resolve => watcher.once('connected', resolve));
        if (Number(armed.header.revision) !== next.revision) {
          // Something was written between the read and the watch: is the key ahead still there?
          const again = await ahead(ownRevision);
          if (!again.key?.equals(next.key)) {
            void watcher.cancel();
            next = again;
            continue;
          }
        }
        await deleted;
        void watcher.cancel();
        next = await ahead(ownRevision);
      }
      return { release: async () => void (await client.kv.deleteRange({ key: Buffer.from(key) })) };
    },
    close: async () => {
      await lease.revoke();
      client.close();
    },
  };
}

/** Every waiter takes and releases `key` in a loop until `until` (wall clock). */
async function loop(key: string, until: number, records?: Record4[]): Promise<void> {
  await Promise.all(
    Array.from({ length: config.waiters }, async (_, waiter) => {
      while (wallMs() < until) {
        const acquireStart = wallMs();
        const lock = await locker.acquire(key, waiter);
        const grant = wallMs();
        const releaseStart = wallMs();
        await lock.release();
        records?.push([acquireStart, grant, releaseStart, wallMs()]);
      }
    }),
  );
}

const locker = await makeLocker();
console.log('ready');
await commands.next();
const before = watchCounts();
const cpu0 = process.cpuUsage();
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();
const deadline = wallMs() + config.durationMs;
const records: Record4[] = [];
await loop(config.key, deadline, records);
const cpu = process.cpuUsage(cpu0);
loopDelay.disable();
const watch = diffCounts(watchCounts(), before);
await locker.close();
finish({
  records,
  watch,
  deleteEvents: deleteEventTimes().filter(t => t >= deadline - config.durationMs),
  cpuMs: (cpu.user + cpu.system) / 1000,
  loopDelayMs: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6 },
});
