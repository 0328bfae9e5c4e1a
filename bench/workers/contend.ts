/**
 * Contended-handoff worker: `waiters` concurrent loops in this process, each taking and at
 * once releasing one shared resource until the duration ends. Prints "ready", starts on "go",
 * prints {records, watch, deleteEvents, cpuMs, loopDelayMs} last. Times are wall-clock ms (comparable across processes).
 *
 *   impl "ours":    one EtcdLockClient (one lease) per process, as an application has
 *   impl "redlock": redlock v4 on one Redis, its default retry delay (200 ms + up to 200 ms jitter)
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { EtcdLockClient } from '../../lib/core/index.js';
import { finish, stdinCommands } from '../lib/procs.js';
import { wallMs } from '../lib/stats.js';
import { deleteEventTimes, diffCounts, installWatchCounter, watchCounts } from '../lib/watch-counter.js';

interface Config {
  impl: 'ours' | 'redlock';
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
  acquire(key?: string): Promise<{ release(): Promise<void> }>;
  close(): Promise<void>;
}

async function makeLocker(): Promise<Locker> {
  if (config.impl === 'ours') {
    const client = new EtcdLockClient({ hosts: config.endpoint, ttl: 10, waitTimeout: 120_000, prefix: 'bench/' });
    await client.connect();
    return { acquire: (key = config.key) => client.acquire(key), close: () => client.close() };
  }
  const { Redis } = await import('ioredis');
  const { default: Redlock } = await import('redlock');
  const redis = new Redis({ host: '127.0.0.1', port: config.redisPort });
  await redis.ping();
  const redlock = new Redlock([redis], { retryCount: -1 });
  redlock.on('clientError', () => undefined);
  return {
    acquire: async (key = config.key) => {
      const lock = await redlock.lock(`bench:${key}`, 10_000);
      return { release: () => lock.unlock() };
    },
    close: async () => void redis.disconnect(),
  };
}

/** Every waiter takes and releases `key` in a loop until `until` (wall clock). */
async function loop(key: string, until: number, records?: Record4[]): Promise<void> {
  await Promise.all(
    Array.from({ length: config.waiters }, async () => {
      while (wallMs() < until) {
        const acquireStart = wallMs();
        const lock = await locker.acquire(key);
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
