/**
 * Uncontended cycle: acquire + release of one resource at a time, by one client, sequentially.
 * Every implementation runs in every round, in a rotating order, against the same servers.
 */
import { Etcd3 } from 'etcd3';
import type Redlock from 'redlock';
import { EtcdLockClient } from '../../lib/core/index.js';
import { guardedCycle } from '../lib/guarded-floor.js';
import { processCpuMs, Worker } from '../lib/procs.js';
import { summarize, type Summary } from '../lib/stats.js';

export type CycleImpl = 'floor' | 'guardedFloor' | 'ours' | 'etcd3Lock' | 'goMutex' | 'redlock';

export interface CycleContext {
  endpoint: string;
  goBinary?: string;
  redlock?: Redlock;
  /** etcd's pid, to read its CPU time per cycle from /proc. */
  etcdPid?: number;
}

/** Per-cycle latencies (ms) and the client's CPU time per cycle (µs). */
export interface CycleSamples {
  samples: number[];
  cpuUsPerCycle: number;
}

type Runner = (tag: string, n: number, warmup: number) => Promise<CycleSamples>;

/** Times `n` cycles after `warmup` unmeasured ones, and this process's CPU time over them. */
async function timeLoop(n: number, warmup: number, cycle: (i: number) => Promise<void>): Promise<CycleSamples> {
  const samples: number[] = [];
  let cpu0 = process.cpuUsage();
  for (let i = 0; i < warmup + n; i++) {
    if (i === warmup) cpu0 = process.cpuUsage();
    const t = performance.now();
    await cycle(i);
    if (i >= warmup) samples.push(performance.now() - t);
  }
  const cpu = process.cpuUsage(cpu0);
  return { samples, cpuUsPerCycle: (cpu.user + cpu.system) / n };
}

export class CycleRunners {
  private readonly runners = new Map<CycleImpl, Runner>();
  private readonly closers: Array<() => Promise<void> | void> = [];

  static async create(ctx: CycleContext): Promise<CycleRunners> {
    const self = new CycleRunners();
    // The floor: the two writes a lock needs (put the key, delete it), raw etcd3 calls.
    const raw = new Etcd3({ hosts: ctx.endpoint });
    self.closers.push(() => raw.close());
    self.runners.set('floor', (tag, n, warmup) =>
      timeLoop(n, warmup, async i => {
        const key = Buffer.from(`bench/u/${tag}/${i}`);
        await raw.kv.put({ key, value: Buffer.from('x') });
        await raw.kv.deleteRange({ key });
      }),
    );
    // etcd 3.4 serves every write Txn at a cost a Put or DeleteRange does not pay (see
    // BENCHMARKS.md), so this is what any lock with retry-safe writes and a guarded release costs.
    const txnLease = raw.lease(10);
    const lease = await txnLease.grant();
    self.closers.push(() => txnLease.revoke().catch(() => undefined));
    self.runners.set('guardedFloor', (tag, n, warmup) => timeLoop(n, warmup, i => guardedCycle(raw, `bench/u-txn/${tag}/${i}/`, lease)));
    const ours = new EtcdLockClient({ hosts: ctx.endpoint, ttl: 10, prefix: 'bench/u-ours/' });
    await ours.connect();
    self.closers.push(() => ours.close());
    self.runners.set('ours', (tag, n, warmup) =>
      timeLoop(n, warmup, async i => {
        const lock = await ours.acquire(`${tag}/${i}`);
        await lock.release();
      }),
    );
    const forLock = new Etcd3({ hosts: ctx.endpoint });
    self.closers.push(() => forLock.close());
    self.runners.set('etcd3Lock', (tag, n, warmup) =>
      timeLoop(n, warmup, async i => {
        const lock = forLock.lock(`bench/u-etcd3/${tag}/${i}`);
        await lock.acquire();
        await lock.release();
      }),
    );
    if (ctx.goBinary) {
      const binary = ctx.goBinary;
      self.runners.set('goMutex', async (tag, n, warmup) => {
        const worker = new Worker('go cycle', binary, [
          'cycle',
          '-endpoint',
          ctx.endpoint,
          '-prefix',
          `bench/u-go/${tag}/`,
          '-n',
          String(n),
          '-warmup',
          String(warmup),
        ]);
        const result = await worker.result<{ cycleMs: number[]; cpuMs: number }>();
        return { samples: result.cycleMs, cpuUsPerCycle: (result.cpuMs * 1000) / n };
      });
    }
    if (ctx.redlock) {
      const redlock = ctx.redlock;
      self.runners.set('redlock', (tag, n, warmup) =>
        timeLoop(n, warmup, async i => {
          const lock = await redlock.lock(`bench:u:${tag}:${i}`, 10_000);
          await lock.unlock();
        }),
      );
    }
    return self;
  }

  get impls(): CycleImpl[] {
    return [...this.runners.keys()];
  }

  run(impl: CycleImpl, tag: string, n: number, warmup: number): Promise<CycleSamples> {
    return this.runners.get(impl)!(tag, n, warmup);
  }

  async close(): Promise<void> {
    for (const close of this.closers.reverse()) await close();
  }
}

export interface CycleRound {
  impl: CycleImpl;
  round: number;
  summary: Summary;
  cpuUsPerCycle: number;
  /** etcd's CPU time per cycle (µs), warm-up cycles included. */
  etcdCpuUsPerCycle: number;
}

export async function runUncontended(
  runners: CycleRunners,
  impls: CycleImpl[],
  rounds: number,
  cycles: number,
  warmup: number,
  label: string,
  etcdPid?: number,
): Promise<CycleRound[]> {
  const out: CycleRound[] = [];
  for (let round = 0; round < rounds; round++) {
    // Rotate the order so that no implementation always runs first or last.
    const order = impls.map((_, i) => impls[(i + round) % impls.length]);
    for (const impl of order) {
      const etcdCpu0 = processCpuMs(etcdPid);
      const { samples, cpuUsPerCycle } = await runners.run(impl, `${label}-${round}`, cycles, warmup);
      const etcdCpuUsPerCycle = ((processCpuMs(etcdPid) - etcdCpu0) * 1000) / (cycles + warmup);
      out.push({ impl, round, summary: summarize(samples), cpuUsPerCycle, etcdCpuUsPerCycle });
    }
  }
  return out;
}
