/**
 * Our locks and Go's `concurrency.Mutex` (etcd's own client library, of the etcd line under test)
 * exclude each other both ways (Go's Mutex counts as a writer to our read/write locks), and neither side hands the lock to a waiter whose lease was revoked.
 */
import type { Etcd3 } from 'etcd3';
import { EtcdLockClient, LockLostError } from '../../lib/core/index.js';
import type { EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { readQueue, staysFalse, track, withTimeout } from './helpers.js';
import { goMutex, interopServer, MUTEX_LINE } from './peers.js';

describe(`interop with Go's concurrency.Mutex (client/v3 of etcd ${MUTEX_LINE === '3.4' ? '3.5' : MUTEX_LINE})`, () => {
  let etcd: EtcdCluster;
  let client: EtcdLockClient;
  let view: Etcd3;
  const peers: Array<ReturnType<typeof goMutex>> = [];
  const spawnGo = (name: string) => {
    const p = goMutex(etcd.endpoints, name);
    peers.push(p);
    return p;
  };
  const queued = (prefix: string, length: number, what: string) =>
    waitFor(async () => (await readQueue(view, prefix)).length === length, { message: what });

  interopServer(server => ({ etcd, client, view } = server));
  afterAll(() => {
    for (const p of peers) p.child.kill('SIGKILL');
  });

  it('Go holding the lock: ours waits, and is granted once Go unlocks, with a later revision', async () => {
    const go = spawnGo('locks/held-by-go');
    const theirs = await go.held();
    expect(theirs.key).toMatch(/^locks\/held-by-go\/[0-9a-f]+$/);
    expect(await client.tryAcquire('held-by-go')).toBeNull();

    const ours = track(client.acquire('held-by-go'));
    await queued('locks/held-by-go/', 2, 'our key queued behind Go');
    expect(await staysFalse(() => ours.outcome.status !== 'pending', 300)).toBe(true);

    go.unlock();
    const handle = await ours.promise;
    expect(await go.exited).toBe(0);
    expect(handle.fencingToken).toBeGreaterThan(theirs.revision);
    expect((await readQueue(view, 'locks/held-by-go/')).map(e => e.key)).toEqual([handle.key]);
    await handle.release();
  });

  it('our lock held: Go waits, and holds only once we release', async () => {
    const handle = await client.acquire('held-by-us');
    const go = spawnGo('locks/held-by-us');
    await queued('locks/held-by-us/', 2, "Go's key queued behind ours");
    const [, goEntry] = await readQueue(view, 'locks/held-by-us/');
    expect(await staysFalse(() => go.stdout.includes('locked'), 300)).toBe(true);

    await handle.release();
    expect((await go.held()).key).toBe(goEntry!.key);
    go.unlock();
    expect(await go.exited).toBe(0);
    expect(await readQueue(view, 'locks/held-by-us/')).toEqual([]);
  });

  it("Go's Mutex is a writer to our read/write lock: Go holding excludes our readers, and Go waits for our reader", async () => {
    const name = 'locks/rw-with-go';
    const go = spawnGo(name);
    const theirs = await go.held();
    expect(await client.tryAcquire('rw-with-go', { shared: true })).toBeNull();
    const reader = track(client.acquire('rw-with-go', { shared: true }));
    await queued(`${name}/`, 2, 'our reader queued behind Go');
    expect(await staysFalse(() => reader.outcome.status !== 'pending', 300)).toBe(true);
    go.unlock();
    const read = await reader.promise;
    expect(await go.exited).toBe(0);
    expect(read.fencingToken).toBeGreaterThan(theirs.revision);

    // Our reader holds: Go's Mutex queues behind it and locks only once it is released.
    const second = spawnGo(name);
    await queued(`${name}/`, 2, "Go's key queued behind our reader");
    const [, goEntry] = await readQueue(view, `${name}/`);
    expect(await staysFalse(() => second.stdout.includes('locked'), 300)).toBe(true);
    await read.release();
    expect((await second.held()).key).toBe(goEntry!.key);
    second.unlock();
    expect(await second.exited).toBe(0);
    expect(await readQueue(view, `${name}/`)).toEqual([]);
  });

  it('our waiter behind Go whose lease is revoked is refused, and the lock goes to the next waiter', async () => {
    const go = spawnGo('locks/revoked-ours');
    await go.held();
    const victimClient = new EtcdLockClient({ hosts: etcd.endpoints, ttl: 2, waitTimeout: 10_000 });
    try {
      const victim = track(victimClient.acquire('revoked-ours'));
      await queued('locks/revoked-ours/', 2, 'our victim queued behind Go');
      const next = track(client.acquire('revoked-ours'));
      await queued('locks/revoked-ours/', 3, 'the next waiter queued');
      const [, victimEntry] = await readQueue(view, 'locks/revoked-ours/');
      await view.leaseClient.leaseRevoke({ ID: BigInt(`0x${victimEntry!.lease}`).toString() });
      go.unlock();

      await expect(withTimeout(victim.promise, 10_000, 'the victim to give up')).rejects.toBeInstanceOf(LockLostError);
      const handle = await withTimeout(next.promise, 10_000, 'the next waiter');
      expect((await readQueue(view, 'locks/revoked-ours/')).map(e => e.key)).toEqual([handle.key]);
      await handle.release();
    } finally {
      await victimClient.close();
    }
  });

  it('Go waiting behind us whose lease is revoked is refused by its Mutex (it re-reads its own key)', async () => {
    const handle = await client.acquire('revoked-go');
    const go = spawnGo('locks/revoked-go');
    const lease = await go.lease();
    await queued('locks/revoked-go/', 2, "Go's key queued");
    await view.leaseClient.leaseRevoke({ ID: BigInt(`0x${lease}`).toString() });
    await handle.release();

    // Every client/v3 (3.5+; the 3.4 line runs the 3.5 client) re-reads its key after waiting.
    expect(await go.exited).toBe(2);
    expect(go.stderr).toMatch(/lock failed: mutex: session is expired/);
    expect(go.stdout).not.toMatch(/locked/);
    expect(await readQueue(view, 'locks/revoked-go/')).toEqual([]);
  });
});
