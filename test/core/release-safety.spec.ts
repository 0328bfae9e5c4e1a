/**
 * Release never deletes another holder's key (it deletes by create revision, not
 * by name); double release is idempotent; release after loss is safe.
 */
import type { Etcd3 } from 'etcd3';
import { EtcdLockClient, LockLostError } from '../../lib/core/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { countRpcs } from '../support/rpc-counter.js';
import { abortedAt, observer, readQueue, withTimeout } from './helpers.js';

describe('release safety', () => {
  let etcd: EtcdCluster;
  let a: EtcdLockClient;
  let b: EtcdLockClient;
  let view: Etcd3;

  const keysOf = async (resource: string) => (await readQueue(view, `locks/${resource}/`)).map(e => e.key);

  beforeAll(async () => {
    etcd = await startEtcd();
    view = observer(etcd.endpoints);
    // TTL 30: no renewal (nor the audit of held keys after it) adds a call to those counted below.
    a = new EtcdLockClient({ hosts: etcd.endpoints, ttl: 30, waitTimeout: 5000 });
    b = new EtcdLockClient({ hosts: etcd.endpoints, ttl: 30, waitTimeout: 5000 });
    await Promise.all([a.connect(), b.connect()]);
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    view?.close();
    await etcd?.close();
  });

  it("A's key deleted from outside, B takes the lock: A's release leaves B's key alone", async () => {
    const lockA = await a.acquire('stolen');
    await view.delete().key(lockA.key);
    const lockB = await b.acquire('stolen', { waitTimeout: 0 });
    expect(lockB.fencingToken).toBeGreaterThan(lockA.fencingToken);

    await lockA.release();
    expect(await keysOf('stolen')).toEqual([lockB.key]);
    expect(lockB.lost).toBe(false);
    // And the lock is still B's: nobody else gets in.
    expect(await a.tryAcquire('stolen')).toBeNull();
    await lockB.release();
    expect(await keysOf('stolen')).toEqual([]);
  });

  it("A's key deleted and re-created under the SAME name by someone else: A's release leaves it", async () => {
    const lockA = await a.acquire('same-name');
    await view.delete().key(lockA.key);
    await view.put(lockA.key).value('someone else');
    const [entry] = await readQueue(view, 'locks/same-name/');
    expect(entry!.key).toBe(lockA.key);
    expect(entry!.createRevision).toBeGreaterThan(lockA.fencingToken);

    await lockA.release();
    expect(await view.get(lockA.key).string()).toBe('someone else');
    await view.delete().key(lockA.key);
  });

  it('double release is idempotent: one delete, and a later holder is untouched', async () => {
    const rpcs = countRpcs(a.etcd);
    try {
      const lockA = await a.acquire('twice');
      rpcs.reset();
      const first = lockA.release();
      expect(lockA.release()).toBe(first); // concurrent second call: the same promise
      await first;
      expect(rpcs.calls).toEqual(['KV.txnEncoded']);

      const lockB = await b.acquire('twice');
      await lockA.release();
      await lockA.release();
      expect(rpcs.calls).toEqual(['KV.txnEncoded']); // no further call at all
      expect(await keysOf('twice')).toEqual([lockB.key]);
      expect(lockB.lost).toBe(false);
      // A released lock does not report itself lost.
      expect(lockA.lost).toBe(false);
      expect(() => lockA.throwIfLost()).not.toThrow();
      await lockB.release();
    } finally {
      rpcs.restore();
    }
  });

  it("release after the lease was revoked (lock lost) is safe, and leaves the next holder's key", async () => {
    const lossy = new EtcdLockClient({ hosts: etcd.endpoints, ttl: 1 });
    try {
      const lockA = await lossy.acquire('revoked');
      const lost = abortedAt(lockA.signal);
      await view.leaseClient.leaseRevoke({ ID: BigInt(`0x${lockA.leaseId}`).toString() });
      // The session learns of it at its next renewal (TTL/3).
      const { reason } = await withTimeout(lost, 3000, 'the holder to learn its lease was revoked');
      expect(reason).toBeInstanceOf(LockLostError);
      expect((reason as Error).message).toBe('Lock "revoked" lost: etcd reports that the lease has expired');
      expect(lockA.lost).toBe(true);

      const lockB = await b.acquire('revoked', { waitTimeout: 0 });
      await expect(lockA.release()).resolves.toBeUndefined();
      expect(await keysOf('revoked')).toEqual([lockB.key]);
      expect(lockB.lost).toBe(false);
      await lockB.release();

      // The client opens a fresh lease for the next lock.
      const again = await lossy.acquire('revoked');
      expect(again.leaseId).not.toBe(lockA.leaseId);
      await again.release();
    } finally {
      await lossy.close();
    }
  });

  it('release after close() is safe: the handle is lost, release resolves, the key is gone', async () => {
    const closing = new EtcdLockClient({ hosts: etcd.endpoints, ttl: 5 });
    const lock = await closing.acquire('closed');
    const lost = abortedAt(lock.signal);
    await closing.close();
    const { reason } = await withTimeout(lost, 1000, 'the handle to be marked lost on close');
    expect(reason).toBeInstanceOf(LockLostError);
    expect((reason as Error).message).toBe('Lock "closed" lost: the lock client was closed');
    await expect(lock.release()).resolves.toBeUndefined();
    // close() revoked the lease: the key went with it, so a waiter elsewhere proceeds at once.
    expect(await keysOf('closed')).toEqual([]);
    const other = await b.acquire('closed', { waitTimeout: 0 });
    await other.release();
  });

  it('a waiter behind a holder whose key is deleted from outside is granted', async () => {
    const lockA = await a.acquire('deleted-ahead');
    const waiting = b.acquire('deleted-ahead');
    await waitFor(async () => (await keysOf('deleted-ahead')).length === 2, { message: 'B queued' });
    await view.delete().key(lockA.key);
    const lockB = await waiting;
    await lockA.release();
    expect(await keysOf('deleted-ahead')).toEqual([lockB.key]);
    await lockB.release();
  });
});
