/**
 * Issue 18: semaphores and read/write locks against real etcd, across three clients (three
 * leases, as three instances would be): the bound on holders, readers overlapping and writers
 * alone, a writer not starved by a stream of readers, `etcdctl lock` counting as a writer, and
 * the watch events a grant costs with many waiters queued.
 */
import { jest } from '@jest/globals';
import { EtcdLockClient, LockHandle, type LockClient } from '../../lib/core/index.js';
import { diffCounts, installWatchCounter, watchCounts } from '../../bench/lib/watch-counter.js';
import { waitFor } from '../support/wait.js';
import { readQueue, staysFalse, track } from './helpers.js';
import { etcdctlLock, interopServer } from './peers.js';
import type { EtcdCluster } from '../support/etcd.js';
import type { Etcd3 } from 'etcd3';

jest.setTimeout(60_000);

describe('semaphores and read/write locks (real etcd, three clients)', () => {
  let etcd: EtcdCluster;
  let view: Etcd3;
  let clients: EtcdLockClient[] = [];
  let n = 0;
  let resource: string;

  interopServer(server => ({ etcd, view } = server));
  beforeAll(async () => {
    installWatchCounter();
    clients = [1, 2, 3].map(() => new EtcdLockClient({ hosts: etcd.endpoints, ttl: 5, waitTimeout: 30_000 }));
    await Promise.all(clients.map(c => c.connect()));
  });
  afterAll(async () => {
    await Promise.all(clients.map(c => c.close()));
  });
  beforeEach(() => {
    resource = `sem-rw-${++n}`;
  });

  /** Each client runs `perClient` sections in turn; a section stays until `fill` are inside or all have entered. */
  async function run(perClient: number, modeOf: (i: number) => { shared?: boolean; permits?: number }, fill: number) {
    let inside = 0;
    let writers = 0;
    let entered = 0;
    let max = 0;
    let writerWithOthers = false;
    const total = perClient * clients.length * 2;
    const worker = async (client: LockClient, offset: number) => {
      for (let i = 0; i < perClient; i++) {
        const mode = modeOf(offset + i);
        const writer = !mode.shared && mode.permits === undefined;
        await client.withLock(
          resource,
          async () => {
            inside++;
            entered++;
            if (writer) writers++;
            max = Math.max(max, inside);
            if (writers > 0 && inside > 1) writerWithOthers = true;
            await waitFor(() => inside >= fill || entered === total, { intervalMs: 2, message: `${fill} inside` });
            await new Promise(resolve => setTimeout(resolve, 10));
            if (writer) writers--;
            inside--;
          },
          mode,
        );
      }
    };
    // Two concurrent workers per client, so one client also queues against itself.
    await Promise.all(clients.flatMap((client, c) => [worker(client, c * 100), worker(client, c * 100 + 50)]));
    return { max, writerWithOthers };
  }

  it('a semaphore of 3 reaches 3 holders across the clients, and never 4', async () => {
    const { max } = await run(6, () => ({ permits: 3 }), 3);
    expect(max).toBe(3);
  });

  it('readers overlap across clients; no reader ever overlaps a writer', async () => {
    const { max, writerWithOthers } = await run(6, i => (i % 3 === 2 ? {} : { shared: true }), 1);
    expect(writerWithOthers).toBe(false);
    expect(max).toBeGreaterThan(1);
  });

  it('a writer behind a continuous stream of readers is granted once the readers ahead of it leave', async () => {
    const HOLD_MS = 100;
    const readers: Array<Promise<{ lock: LockHandle; grantedAt: number }>> = [];
    let streaming = true;
    const stream = (async () => {
      for (let i = 0; streaming; i++) {
        const client = clients[i % 3];
        readers.push(
          client.acquire(resource, { shared: true }).then(lock => {
            const grantedAt = performance.now();
            setTimeout(() => void lock.release(), HOLD_MS);
            return { lock, grantedAt };
          }),
        );
        await new Promise(resolve => setTimeout(resolve, 10));
      }
    })();
    await waitFor(async () => (await clients[0].inspect(resource)).holders.length >= 3, { message: 'readers holding' });
    const queuedAt = performance.now();
    const writer = await clients[1].acquire(resource);
    const waitedMs = performance.now() - queuedAt;
    const writerGrantedAt = performance.now();
    await new Promise(resolve => setTimeout(resolve, 30));
    const writerReleasedAt = performance.now();
    await writer.release();
    streaming = false;
    await stream;
    const granted = await Promise.all(readers);
    // The readers ahead of it hold HOLD_MS each and had all entered when it queued: it waits about
    // one hold, not for the stream to end.
    expect(waitedMs).toBeLessThan(HOLD_MS * 5);
    // FIFO: every reader queued after the writer was granted only after the writer left.
    const after = granted.filter(r => r.lock.fencingToken > writer.fencingToken);
    expect(after.length).toBeGreaterThan(0);
    for (const r of after) expect(r.grantedAt).toBeGreaterThanOrEqual(writerReleasedAt - 1);
    for (const r of granted.filter(r => r.lock.fencingToken < writer.fencingToken)) {
      expect(r.grantedAt).toBeLessThan(writerGrantedAt);
    }
  });

  it('etcdctl lock on the same name is a writer: it excludes our readers, and waits for them', async () => {
    const name = `locks/${resource}`;
    const theirs = etcdctlLock(etcd.endpoints, name);
    await theirs.held();
    expect(await clients[0].tryAcquire(resource, { shared: true })).toBeNull();
    const reader = track(clients[0].acquire(resource, { shared: true }));
    await waitFor(async () => (await readQueue(view, `${name}/`)).length === 2, { message: 'our reader queued' });
    expect(await staysFalse(() => reader.outcome.status !== 'pending', 300)).toBe(true);
    theirs.child.kill('SIGTERM');
    const read = await reader.promise;
    await theirs.exited;

    // Our reader holds: a second etcdctl lock waits until it is released.
    const second = etcdctlLock(etcd.endpoints, name);
    await waitFor(async () => (await readQueue(view, `${name}/`)).length === 2, { message: 'etcdctl queued' });
    expect(await staysFalse(() => second.stdout.length > 0, 300)).toBe(true);
    await read.release();
    await second.held();
    second.child.kill('SIGTERM');
    await second.exited;
  });

  /** Queues `waiters` on clients[1] behind `holders`, releases `grants` of them one by one; returns the watch events per grant. */
  async function eventsPerGrant(options: { permits?: number; shared?: boolean }, holders: LockHandle[], waiters: number, grants: number) {
    const queued = Array.from({ length: waiters }, () => track(clients[1].acquire(resource, options)));
    await waitFor(async () => (await clients[0].inspect(resource)).waiters.length === waiters, {
      timeoutMs: 30_000,
      message: `${waiters} waiters queued`,
    });
    // Every waiter armed: nothing changes in the queue for a while, and then events are only grants.
    await new Promise(resolve => setTimeout(resolve, 500));
    const before = watchCounts();
    const inside = [...holders];
    const granted = new Set<LockHandle>();
    const newlyGranted = () =>
      queued.flatMap(q => (q.outcome.status === 'fulfilled' && !granted.has(q.outcome.value) ? [q.outcome.value] : []));
    for (let g = 0; g < grants; g++) {
      await inside.shift()!.release();
      await waitFor(() => newlyGranted().length > 0, { intervalMs: 5, message: `grant #${g + 1}` });
      const [next, ...more] = newlyGranted();
      expect(more).toEqual([]); // one release, one grant
      granted.add(next);
      inside.push(next);
    }
    // Let the last grant's wake-up (the rewrite and its re-read) settle before counting.
    await new Promise(resolve => setTimeout(resolve, 300));
    const counts = diffCounts(watchCounts(), before);
    await Promise.all(inside.map(h => h.release()));
    await Promise.all(queued.map(q => q.promise.then(h => (granted.has(h) ? undefined : h.release()))));
    return (counts.delete + counts.put) / grants;
  }

  it('a grant of a semaphore costs at most 2 watch events with 200 waiters queued', async () => {
    const holders = await Promise.all([1, 2, 3].map(() => clients[0].acquire(resource, { permits: 3 })));
    const perGrant = await eventsPerGrant({ permits: 3 }, holders, 200, 20);
    console.log(`semaphore of 3, 200 waiters: ${perGrant.toFixed(2)} watch events per grant`);
    expect(perGrant).toBeLessThanOrEqual(2);
  });

  it('a grant of a writer behind writers costs 1 watch event with 200 waiters queued', async () => {
    const holder = await clients[0].acquire(resource);
    const perGrant = await eventsPerGrant({}, [holder], 200, 20);
    console.log(`rw writers, 200 waiters: ${perGrant.toFixed(2)} watch events per grant`);
    expect(perGrant).toBeLessThanOrEqual(1);
  });
});
