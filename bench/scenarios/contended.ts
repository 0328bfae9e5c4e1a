/**
 * Contended handoff: W waiters on one resource, spread over P processes, each taking the lock
 * and releasing it at once, in a loop, for a fixed time. From the merged records (wall-clock,
 * one machine): handoffs/s, wait (acquire called → granted), and handoff latency (previous
 * holder's release started → next holder granted).
 */
import { grpcReceived, grpcUnaryStarted, histogramDelta, scrapeMetrics } from '../lib/metrics.js';
import { nodeWorker, processCpuMs, Worker } from '../lib/procs.js';
import { median, summarize, type Summary } from '../lib/stats.js';
import type { WatchCounts } from '../lib/watch-counter.js';

export type ContendImpl = 'ours' | 'oursSemaphore' | 'oursReadWrite' | 'contendedFloor' | 'goMutex' | 'redlock';

/** Implementations whose holders may overlap by design (a semaphore's permits, readers). */
const SHARING: ReadonlySet<ContendImpl> = new Set(['oursSemaphore', 'oursReadWrite']);
type Record4 = [number, number, number, number];

export interface ContendRun {
  impl: ContendImpl;
  waiters: number;
  processes: number;
  round: number;
  handoffs: number;
  handoffsPerSec: number;
  wait: Summary;
  handoff: Summary;
  /** Grants that came before the previous holder had started releasing: must be 0 (not counted where holders may share). */
  overlaps?: number;
  /** 'delete' and 'put' watch events received per handoff (grant), over all processes (the library only). */
  deletesPerHandoff?: number;
  putsPerHandoff?: number;
  /** ours: previous holder's release started → 'delete' event at the next holder's process. */
  toEvent?: Summary;
  /** ours: that event → next holder granted (the re-read, and waiting for the event loop). */
  eventToGrant?: Summary;
  /** CPU time of the lock clients (all worker processes) per handoff, ms. */
  clientCpuMsPerHandoff: number;
  /** CPU time of etcd per handoff, ms (from /proc). */
  etcdCpuMsPerHandoff: number;
  /** Event-loop delay in the Node workers (median over workers of their p50 / p99), ms. */
  loopDelayP50?: number;
  loopDelayP99?: number;
  /** etcd's WAL fsyncs during the run: p99 (upper bound of its histogram bucket), ms. */
  walFsyncP99?: number;
  /** Unary requests etcd served per handoff (all methods), from its gRPC metrics. */
  unaryPerHandoff: number;
  /** Messages etcd received on watch streams per handoff (watch creates + cancels). */
  watchMsgsPerHandoff: number;
}

export interface ContendContext {
  endpoint: string;
  goBinary?: string;
  redisPort?: number;
  durationMs: number;
  warmupMs: number;
  /** etcd's pid, to read its CPU time from /proc. */
  etcdPid?: number;
}

interface WorkerResult {
  records: Record4[];
  watch?: WatchCounts;
  deleteEvents?: number[];
  cpuMs: number;
  loopDelayMs?: { p50: number; p99: number };
}

export async function runContended(
  ctx: ContendContext,
  impl: ContendImpl,
  waiters: number,
  processes: number,
  round: number,
): Promise<ContendRun> {
  const key = `contend-${impl}-${waiters}-${round}-${process.pid}`;
  const per = Math.ceil(waiters / processes);
  const workers: Worker[] = [];
  for (let p = 0; p < processes; p++) {
    const count = Math.min(per, waiters - p * per);
    if (impl === 'goMutex') {
      workers.push(
        new Worker(`go contend ${p}`, ctx.goBinary!, [
          'contend',
          '-endpoint',
          ctx.endpoint,
          '-key',
          `bench/${key}`,
          '-waiters',
          String(count),
          '-duration-ms',
          String(ctx.durationMs),
        ]),
      );
    } else {
      workers.push(
        nodeWorker(`contend ${impl} ${p}`, 'contend.js', {
          impl,
          endpoint: ctx.endpoint,
          redisPort: ctx.redisPort,
          key,
          waiters: count,
          durationMs: ctx.durationMs,
        }),
      );
    }
  }
  try {
    await Promise.all(workers.map(w => w.line('ready')));
    const metrics0 = await scrapeMetrics(ctx.endpoint);
    const etcdCpu0 = processCpuMs(ctx.etcdPid);
    const start = performance.timeOrigin + performance.now();
    for (const w of workers) w.send('go');
    const results = await Promise.all(workers.map(w => w.result<WorkerResult>()));
    const etcdCpuMs = processCpuMs(ctx.etcdPid) - etcdCpu0;
    const metrics1 = await scrapeMetrics(ctx.endpoint);
    const fsyncs = histogramDelta(metrics0, metrics1, 'etcd_disk_wal_fsync_duration_seconds');
    const tagged = results.flatMap((r, p) => r.records.map(rec => ({ rec, p })));
    tagged.sort((x, y) => x.rec[1] - y.rec[1]);
    const records = tagged.map(t => t.rec);
    const from = start + ctx.warmupMs;
    const to = start + ctx.durationMs;
    const inWindow = records.map((r, i) => ({ r, i })).filter(({ r }) => r[1] >= from && r[1] <= to);
    const handoffs: number[] = [];
    const toEvent: number[] = [];
    const eventToGrant: number[] = [];
    let overlaps = 0;
    for (const { r, i } of inWindow) {
      if (i === 0) continue;
      const previous = records[i - 1];
      if (!SHARING.has(impl) && r[1] < previous[2]) overlaps++;
      handoffs.push(r[1] - previous[2]);
      // The 'delete' event that woke the next holder: the last one its process received in between.
      const events = results[tagged[i].p].deleteEvents;
      if (events) {
        const t = lastBetween(events, previous[2], r[1]);
        if (t !== undefined) {
          toEvent.push(t - previous[2]);
          eventToGrant.push(r[1] - t);
        }
      }
    }
    const first = inWindow[0]?.r[1] ?? NaN;
    const last = inWindow.at(-1)?.r[1] ?? NaN;
    const deletes = results.reduce((sum, r) => sum + (r.watch?.delete ?? 0), 0);
    const puts = results.reduce((sum, r) => sum + (r.watch?.put ?? 0), 0);
    const library = impl === 'ours' || SHARING.has(impl);
    return {
      impl,
      waiters,
      processes,
      round,
      handoffs: records.length,
      handoffsPerSec: ((inWindow.length - 1) / (last - first)) * 1000,
      wait: summarize(inWindow.map(({ r }) => r[1] - r[0])),
      handoff: summarize(handoffs),
      overlaps: SHARING.has(impl) ? undefined : overlaps,
      deletesPerHandoff: library ? deletes / records.length : undefined,
      putsPerHandoff: library ? puts / records.length : undefined,
      toEvent: toEvent.length ? summarize(toEvent) : undefined,
      eventToGrant: eventToGrant.length ? summarize(eventToGrant) : undefined,
      clientCpuMsPerHandoff: results.reduce((sum, r) => sum + r.cpuMs, 0) / records.length,
      etcdCpuMsPerHandoff: etcdCpuMs / records.length,
      loopDelayP50: results[0].loopDelayMs ? median(results.map(r => r.loopDelayMs!.p50)) : undefined,
      loopDelayP99: results[0].loopDelayMs ? median(results.map(r => r.loopDelayMs!.p99)) : undefined,
      walFsyncP99: fsyncs.quantile(0.99) * 1000,
      unaryPerHandoff: (grpcUnaryStarted(metrics1) - grpcUnaryStarted(metrics0)) / records.length,
      watchMsgsPerHandoff: (grpcReceived(metrics1, 'Watch') - grpcReceived(metrics0, 'Watch')) / records.length,
    };
  } finally {
    for (const w of workers) w.kill();
  }
}

/** The last of ascending-or-not `times` within [from, to], if any. */
function lastBetween(times: readonly number[], from: number, to: number): number | undefined {
  let best: number | undefined;
  for (const t of times) if (t >= from && t <= to && (best === undefined || t > best)) best = t;
  return best;
}
