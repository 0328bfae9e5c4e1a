/**
 * Long-queue worker: on "enqueue", `waiters` acquisitions of one resource (held meanwhile by
 * the orchestrator) queue up; once each has armed its watch it prints "armed". Each waiter,
 * when granted, releases at once; after the whole queue has passed it prints
 * {records, watch}: what the watchers of this process received while the queue drained.
 */
import { EtcdLockClient } from '../../lib/core/index.js';
import { finish, stdinCommands } from '../lib/procs.js';
import { wallMs } from '../lib/stats.js';
import { armedWatches, diffCounts, installWatchCounter, watchCounts } from '../lib/watch-counter.js';

interface Config {
  endpoint: string;
  key: string;
  waiters: number;
  mode: 'mutex' | 'semaphore' | 'readWrite';
}

const config = JSON.parse(process.argv[2]) as Config;
installWatchCounter();
const commands = stdinCommands();
const client = new EtcdLockClient({ hosts: config.endpoint, ttl: 10, waitTimeout: 180_000, prefix: 'bench/' });
await client.connect();
console.log('ready');
await commands.next();

const armed = armedWatches(config.waiters);
const records: [number, number, number, number][] = [];
const done = Promise.all(
  Array.from({ length: config.waiters }, async (_, waiter) => {
    const acquireStart = wallMs();
    const options = config.mode === 'semaphore' ? { permits: 3 } : config.mode === 'readWrite' ? { shared: waiter % 4 !== 0 } : {};
    const lock = await client.acquire(config.key, options);
    const grant = wallMs();
    await lock.release();
    records.push([acquireStart, grant, grant, wallMs()]);
  }),
);
await armed;
// Each waiter re-reads the queue once its watch is armed; let those reads finish.
await new Promise(r => setTimeout(r, 300));
const before = watchCounts();
console.log('armed');
await done;
const watch = diffCounts(watchCounts(), before);
await client.close();
finish({ records, watch });
