/**
 * 1,000 waiters queued on one resource (two processes), watches armed; the holder releases and
 * the queue drains, each waiter releasing as soon as it is granted. Counts what the waiters'
 * watchers received (client side) and what etcd sent on watch streams (server side).
 */
import { EtcdLockClient } from '../../lib/core/index.js';
import { grpcSent, scrapeMetrics } from '../lib/metrics.js';
import { nodeWorker, type Worker } from '../lib/procs.js';
import { summarize, type Summary } from '../lib/stats.js';
import type { WatchCounts } from '../lib/watch-counter.js';

/** What queues: one mutex; a semaphore of 3 (3 permits held meanwhile); a read/write lock (every 4th waiter a writer, a writer holding meanwhile). */
export type HerdMode = 'mutex' | 'semaphore' | 'readWrite';

export interface HerdRun {
  mode: HerdMode;
  waiters: number;
  processes: number;
  handoffsPerSec: number;
  handoff: Summary;
  deleteEventsPerHandoff: number;
  putEventsPerHandoff: number;
  watchResponsesPerHandoff: number;
  serverWatchMessagesPerHandoff: number;
  serverWatchersWhileQueued: number;
  serverUnsyncedWatchersWhileQueued: number;
}

export async function runHerd(
  endpoint: string,
  waiters: number,
  processes: number,
  round: number,
  mode: HerdMode = 'mutex',
): Promise<HerdRun> {
  const key = `herd-${mode}-${round}-${process.pid}`;
  const holderClient = new EtcdLockClient({ hosts: endpoint, ttl: 10, prefix: 'bench/' });
  const workers: Worker[] = [];
  try {
    await holderClient.connect();
    for (let p = 0; p < processes; p++)
      workers.push(nodeWorker(`herd ${p}`, 'herd.js', { endpoint, key, waiters: waiters / processes, mode }));
    await Promise.all(workers.map(w => w.line('ready')));
    const holders =
      mode === 'semaphore'
        ? await Promise.all([0, 1, 2].map(() => holderClient.acquire(key, { permits: 3 })))
        : [await holderClient.acquire(key)];
    for (const w of workers) w.send('enqueue');
    await Promise.all(workers.map(w => w.line('armed', 120_000)));
    const m0 = await scrapeMetrics(endpoint);
    const t0 = performance.timeOrigin + performance.now();
    await Promise.all(holders.map(h => h.release()));
    const results = await Promise.all(
      workers.map(w => w.result<{ records: [number, number, number, number][]; watch: WatchCounts }>(180_000)),
    );
    const m1 = await scrapeMetrics(endpoint);
    const grants = results.flatMap(r => r.records).sort((a, b) => a[1] - b[1]);
    const handoffs = grants.map((r, i) => r[1] - (i === 0 ? t0 : grants[i - 1][2]));
    const n = grants.length;
    const sum = (k: keyof WatchCounts) => results.reduce((s, r) => s + r.watch[k], 0);
    return {
      mode,
      waiters,
      processes,
      handoffsPerSec: (n / (grants[n - 1][1] - t0)) * 1000,
      handoff: summarize(handoffs),
      deleteEventsPerHandoff: sum('delete') / n,
      putEventsPerHandoff: sum('put') / n,
      watchResponsesPerHandoff: sum('data') / n,
      serverWatchMessagesPerHandoff: (grpcSent(m1, 'Watch') - grpcSent(m0, 'Watch')) / n,
      serverWatchersWhileQueued: m0.get('etcd_debugging_mvcc_watcher_total') ?? NaN,
      serverUnsyncedWatchersWhileQueued: m0.get('etcd_debugging_mvcc_slow_watcher_total') ?? NaN,
    };
  } finally {
    for (const w of workers) w.kill();
    await holderClient.close();
  }
}
