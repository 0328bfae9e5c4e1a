/**
 * One handoff in isolation, waiter already armed: the holder's release starts at t0; the
 * waiter is granted at t1. Against its floor, measured the same way: a delete at t0, one watch
 * event for it at a watcher armed beforehand, then one read, done at t1. Both in this process,
 * each side on its own etcd connection, so no cross-process clock enters the figure.
 */
import { Etcd3 } from 'etcd3';
import { EtcdLockClient } from '../../lib/core/index.js';
import { prefixRangeEnd } from '../../lib/core/keys.js';
import { summarize, type Summary } from '../lib/stats.js';
import { armedWatches } from '../lib/watch-counter.js';

export interface HandoffRound {
  impl: 'floor' | 'ours';
  round: number;
  summary: Summary;
  /** floor only: delete sent → event received */
  event?: Summary;
  /** floor only: event received → read answered */
  read?: Summary;
}

const settle = (ms: number) => new Promise(r => setTimeout(r, ms));

export class HandoffRunners {
  private constructor(
    private readonly a: Etcd3,
    private readonly b: Etcd3,
    private readonly holder: EtcdLockClient,
    private readonly waiter: EtcdLockClient,
  ) {}

  static async create(endpoint: string): Promise<HandoffRunners> {
    const holder = new EtcdLockClient({ hosts: endpoint, ttl: 10, prefix: 'bench/h-ours/' });
    const waiter = new EtcdLockClient({ hosts: endpoint, ttl: 10, prefix: 'bench/h-ours/' });
    await Promise.all([holder.connect(), waiter.connect()]);
    return new HandoffRunners(new Etcd3({ hosts: endpoint }), new Etcd3({ hosts: endpoint }), holder, waiter);
  }

  async floor(tag: string, n: number, warmup: number): Promise<Pick<HandoffRound, 'summary' | 'event' | 'read'>> {
    const total: number[] = [];
    const event: number[] = [];
    const read: number[] = [];
    const prefix = `bench/h-floor/${tag}/`;
    for (let i = 0; i < warmup + n; i++) {
      const key = Buffer.from(`${prefix}${i}`);
      await this.a.kv.put({ key, value: Buffer.from('x') });
      const watcher = this.b.watch().key(key).only('delete').watcher();
      watcher.on('error', () => undefined);
      await new Promise(resolve => watcher.once('connected', resolve));
      await settle(2);
      const deleted = new Promise<number>(resolve => watcher.once('delete', () => resolve(performance.now())));
      const t0 = performance.now();
      const del = this.a.kv.deleteRange({ key });
      const te = await deleted;
      await this.b.kv.range({
        key: Buffer.from(prefix),
        range_end: prefixRangeEnd(prefix),
        sort_target: 'Create',
        sort_order: 'Descend',
        limit: 1,
        keys_only: true,
      });
      const t1 = performance.now();
      await del;
      void watcher.cancel();
      if (i >= warmup) {
        total.push(t1 - t0);
        event.push(te - t0);
        read.push(t1 - te);
      }
    }
    return { summary: summarize(total), event: summarize(event), read: summarize(read) };
  }

  async ours(tag: string, n: number, warmup: number): Promise<Pick<HandoffRound, 'summary'>> {
    const samples: number[] = [];
    for (let i = 0; i < warmup + n; i++) {
      const resource = `${tag}/${i}`;
      const held = await this.holder.acquire(resource);
      const armed = armedWatches(1);
      const waiting = this.waiter.acquire(resource);
      await armed;
      // Armed; the waiter re-reads the queue once (one round trip) and then only waits.
      await settle(5);
      const t0 = performance.now();
      const released = held.release();
      const granted = await waiting;
      const t1 = performance.now();
      await released;
      await granted.release();
      if (i >= warmup) samples.push(t1 - t0);
    }
    return { summary: summarize(samples) };
  }

  async close(): Promise<void> {
    await Promise.all([this.holder.close(), this.waiter.close()]);
    this.a.close();
    this.b.close();
  }
}

export async function runHandoff(
  runners: HandoffRunners,
  rounds: number,
  n: number,
  warmup: number,
  label: string,
): Promise<HandoffRound[]> {
  const out: HandoffRound[] = [];
  for (let round = 0; round < rounds; round++) {
    const order: Array<'floor' | 'ours'> = round % 2 ? ['ours', 'floor'] : ['floor', 'ours'];
    for (const impl of order) {
      const tag = `${label}-${round}`;
      const res = impl === 'floor' ? await runners.floor(tag, n, warmup) : await runners.ours(tag, n, warmup);
      out.push({ impl, round, ...res });
    }
  }
  return out;
}
