/**
 * Once the session exists, an uncontended acquire is ONE etcd round trip and a
 * release is one. Also pins the cost of a contended handoff, and checks that handoffs are not
 * throttled by etcd's unsynced-watch loop (~10 per second, as with Go's Mutex).
 */
import type { Etcd3 } from 'etcd3';
import { EtcdLockClient } from '../../lib/core/index.js';
import { etcdctlSync, startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { countRpcs, type RpcCounter } from '../support/rpc-counter.js';
import { observer, readQueue, storeRevision, track } from './helpers.js';

describe('etcd round trips', () => {
  let etcd: EtcdCluster;
  let client: EtcdLockClient;
  let rpcs: RpcCounter;
  let view: Etcd3;

  beforeAll(async () => {
    etcd = await startEtcd();
    view = observer(etcd.endpoints);
    // TTL 60: the first renewal (and the audit of held keys that follows each renewal) comes
    // after 20 s, long after this file is done, so every call counted here is the acquisition's.
    client = new EtcdLockClient({ hosts: etcd.endpoints, ttl: 60 });
    rpcs = countRpcs(client.etcd);
    await client.connect();
  });

  afterAll(async () => {
    rpcs?.restore();
    await client?.close();
    view?.close();
    await etcd?.close();
  });

  beforeEach(() => rpcs.reset());

  it('connect() is one lease grant and one read (etcd 3.4 grants leases without checking credentials); connecting again costs nothing', async () => {
    const fresh = new EtcdLockClient({ hosts: etcd.endpoints, ttl: 60 });
    const freshRpcs = countRpcs(fresh.etcd);
    try {
      await fresh.connect();
      expect(freshRpcs.calls).toEqual(['Lease.leaseGrant', 'KV.range']);
      await fresh.connect();
      expect(freshRpcs.calls).toEqual(['Lease.leaseGrant', 'KV.range']);
      expect(fresh.status().state).toBe('alive');
    } finally {
      freshRpcs.restore();
      await fresh.close();
    }
  });

  it('an uncontended acquire is one KV.txn, no watch; its release is one KV.txn', async () => {
    const handle = await client.acquire('uncontended');
    expect(rpcs.calls).toEqual(['KV.txnEncoded']);
    expect(rpcs.watches).toBe(0);
    expect((await readQueue(view, 'locks/uncontended/')).map(e => e.key)).toEqual([handle.key]);

    rpcs.reset();
    await handle.release();
    expect(rpcs.calls).toEqual(['KV.txnEncoded']);
    expect(rpcs.watches).toBe(0);
    expect(await readQueue(view, 'locks/uncontended/')).toEqual([]);

    rpcs.reset();
    await handle.release(); // idempotent: no further call
    expect(rpcs.calls).toEqual([]);
  });

  it('an uncontended tryAcquire is one KV.txn; a busy one is one KV.txn and writes nothing', async () => {
    const handle = await client.tryAcquire('try-rt');
    expect(handle).not.toBeNull();
    expect(rpcs.calls).toEqual(['KV.txnEncoded']);

    const before = await storeRevision(view);
    rpcs.reset();
    expect(await client.tryAcquire('try-rt')).toBeNull();
    expect(rpcs.calls).toEqual(['KV.txnEncoded']);
    expect(rpcs.watches).toBe(0);
    expect(await storeRevision(view)).toBe(before); // no write at all, not even a put + delete
    await handle!.release();
  });

  it('withLock uncontended: one txn in, one txn out', async () => {
    const result = await client.withLock('with-lock-rt', lock => lock.fencingToken);
    expect(typeof result).toBe('bigint');
    expect(rpcs.calls).toEqual(['KV.txnEncoded', 'KV.txnEncoded']);
  });

  it('the first acquire on a fresh client is one lease grant + one KV.txn', async () => {
    const fresh = new EtcdLockClient({ hosts: etcd.endpoints, ttl: 60 });
    const freshRpcs = countRpcs(fresh.etcd);
    try {
      const handle = await fresh.acquire('fresh');
      expect(freshRpcs.calls).toEqual(['Lease.leaseGrant', 'KV.txnEncoded']);
      await handle.release();
    } finally {
      freshRpcs.restore();
      await fresh.close();
    }
  });

  /** A client's first wait also opens its one idle watch (kept open for the client's lifetime so that etcd3 keeps its watch stream); take that one-off cost out of the counts. */
  async function warmUpWatchStream(): Promise<void> {
    const warm = await client.acquire('warm-up');
    const warmWaiter = client.acquire('warm-up');
    await waitFor(async () => (await client.inspect('warm-up')).waiters.length === 1, { message: 'warm-up waiter queued' });
    await warm.release();
    await (await warmWaiter).release();
  }

  it('a contended handoff on a quiet store: the waiter costs its put, one watch and one queue read', async () => {
    await warmUpWatchStream();
    const holder = await client.acquire('handoff');
    rpcs.reset();
    const waiter = track(client.acquire('handoff'));
    // put (1 txn) → watch on the holder's key, armed at the put's revision: nothing to re-read.
    await waitFor(() => rpcs.armed === 1 && rpcs.completed === 1, { message: () => `waiter armed (calls ${rpcs.calls})` });
    expect(waiter.outcome.status).toBe('pending');
    expect(rpcs.calls).toEqual(['KV.txnEncoded']);

    rpcs.reset();
    const releasedAt = performance.now();
    await holder.release();
    const handle = await waiter.promise;
    const handoffMs = performance.now() - releasedAt;
    // The release (1 txn), then the waiter's one re-read after the deletion event.
    expect(rpcs.calls).toEqual(['KV.txnEncoded', 'KV.txnEncoded']);
    expect(rpcs.watches).toBe(0);
    console.log(
      `[round trips] handoff: release + waiter re-read = ${rpcs.calls.length} txns, ${handoffMs.toFixed(1)} ms from release to grant`,
    );
    await handle.release();
  });

  it('a waiter whose watch is armed after the store moved re-reads the queue before waiting', async () => {
    await warmUpWatchStream();
    const holder = await client.acquire('moved');
    rpcs.reset();
    // A write committed between the waiter's put and its watch (etcdctl, run synchronously).
    rpcs.beforeWatch = () => void etcdctlSync(etcd.endpoints, ['put', 'unrelated', 'x']);
    try {
      const waiter = track(client.acquire('moved'));
      await waitFor(() => rpcs.armed === 1 && rpcs.completed === 2, { message: () => `waiter armed and re-read (calls ${rpcs.calls})` });
      expect(rpcs.calls).toEqual(['KV.txnEncoded', 'KV.txnEncoded']);
      expect(waiter.outcome.status).toBe('pending');
      await holder.release();
      await (await waiter.promise).release();
    } finally {
      rpcs.beforeWatch = undefined;
    }
  });

  it("a holder released between the waiter's put and its watch still hands over (the re-read sees it gone)", async () => {
    await warmUpWatchStream();
    const holder = await client.acquire('gap');
    rpcs.reset();
    // The holder's key is deleted after the waiter read it as its predecessor, before the watch exists.
    rpcs.beforeWatch = () => void etcdctlSync(etcd.endpoints, ['del', holder.key]);
    try {
      const handle = await client.acquire('gap', { waitTimeout: 5000 });
      expect(handle.fencingToken).toBeGreaterThan(holder.fencingToken);
      await handle.release();
    } finally {
      rpcs.beforeWatch = undefined;
      await holder.release();
    }
  });

  it('a chain of waiters hands the lock over far faster than a 100 ms unsynced-watch poll would', async () => {
    const holders = 40;
    const first = await client.acquire('chain');
    rpcs.reset();
    let handed = 0;
    const chain = Array.from({ length: holders }, () =>
      client.acquire('chain').then(async handle => {
        handed++;
        await handle.release();
      }),
    );
    // Each waiter: its put, a watch on its predecessor and, if the store moved before the watch
    // was armed (the other waiters' puts), one re-read.
    await waitFor(() => rpcs.armed === holders && rpcs.completed === rpcs.calls.length, {
      message: () => `every waiter armed (${rpcs.armed} armed, ${rpcs.completed} of ${rpcs.calls.length} calls done)`,
    });
    expect(rpcs.calls.length).toBeGreaterThanOrEqual(holders);
    expect(rpcs.calls.length).toBeLessThanOrEqual(2 * holders);
    expect((await readQueue(view, 'locks/chain/')).length).toBe(holders + 1);
    rpcs.reset();
    const start = performance.now();
    await first.release();
    await Promise.all(chain);
    const elapsed = performance.now() - start;
    const perSecond = (holders / elapsed) * 1000;
    console.log(
      `[round trips] ${holders} consecutive handoffs in ${elapsed.toFixed(0)} ms (${perSecond.toFixed(0)}/s), ` +
        `${(rpcs.calls.length / holders).toFixed(2)} calls and ${(rpcs.watches / holders).toFixed(2)} new watches per handoff`,
    );
    expect(handed).toBe(holders);
    // Each handoff: one release txn + the next waiter's re-read; no re-watching, no herd.
    expect(rpcs.calls.every(c => c === 'KV.txnEncoded')).toBe(true);
    expect(rpcs.calls.length).toBe(2 * holders + 1);
    expect(rpcs.watches).toBe(0);
    // A watch started at an old revision is served by etcd's 100 ms unsynced loop: ≤ 10 handoffs/s.
    expect(perSecond).toBeGreaterThan(25);
  });
});
