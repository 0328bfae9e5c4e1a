/**
 * status() after a lease loss (issue 14, point 11), on a real etcd paused past the TTL: it reports
 * `lost` for as long as no fresh lease is granted (the session used to leave the client's map, so
 * status() went `alive` → `idle` and a health check built on it stayed up), then `alive` with a new
 * lease, which the client asks for on its own: no acquisition is needed for status() to recover.
 * And close() in that state returns within its bound whatever etcd does.
 */
import { EtcdLockClient, LockClientClosedError } from '../../lib/core/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { abortedAt, staysFalse, withTimeout } from './helpers.js';

describe('status() after a lease loss', () => {
  let etcd: EtcdCluster;

  beforeAll(async () => {
    etcd = await startEtcd();
  });

  afterAll(async () => {
    try {
      etcd?.members[0]?.resume();
    } catch {
      // not running
    }
    await etcd?.close();
  });

  it('reports lost through the pause, then alive with a fresh lease once etcd answers', async () => {
    const member = etcd.members[0]!;
    const client = new EtcdLockClient({ hosts: etcd.endpoints, ttl: 2, requestTimeout: 1000 });
    try {
      const lock = await client.acquire('status');
      const oldLease = lock.leaseId;
      expect(client.status()).toMatchObject({ state: 'alive', leaseId: oldLease });
      const lost = abortedAt(lock.signal);

      member.pause();
      await withTimeout(lost, 5000, 'the loss');
      const states: string[] = [];
      const seenOnlyLost = await staysFalse(() => {
        states.push(client.status().state);
        return client.status().state !== 'lost';
      }, 1500);
      expect([...new Set(states)]).toEqual(['lost']);
      expect(seenOnlyLost).toBe(true);
      expect(client.status()).toMatchObject({ state: 'lost', leaseId: oldLease, remainingMs: 0 });

      member.resume();
      await waitFor(() => client.status().state === 'alive', {
        timeoutMs: 8000,
        message: () => `status alive again (is ${client.status().state})`,
      });
      expect(client.status().leaseId).not.toBe(oldLease);
      await lock.release();
    } finally {
      try {
        member.resume();
      } catch {
        // not running
      }
      await client.close();
    }
  });

  it('closes within requestTimeout while the lease is lost and etcd still paused, failing a pending wait with LockClientClosedError', async () => {
    const member = etcd.members[0]!;
    const client = new EtcdLockClient({ hosts: etcd.endpoints, ttl: 2, requestTimeout: 1000 });
    try {
      const lock = await client.acquire('close-lost');
      member.pause();
      await withTimeout(abortedAt(lock.signal), 5000, 'the loss');
      expect(client.status().state).toBe('lost');
      // A wait that started after the loss: it needs a new lease, which etcd cannot grant now.
      const pending = client.acquire('close-lost-2', { waitTimeout: 30_000 }).then(
        () => 'granted',
        (err: unknown) => err,
      );
      const started = performance.now();
      const closedAfterMs = await withTimeout(
        client.close().then(() => performance.now() - started),
        5000,
        'close() with the lease lost and etcd paused',
      );
      console.log(`close() with the lease lost and etcd paused: ${closedAfterMs.toFixed(0)} ms`);
      expect(closedAfterMs).toBeLessThan(1000 + 500);
      expect(client.status().state).toBe('closed');
      expect(await withTimeout(pending, 2000, 'the pending wait')).toBeInstanceOf(LockClientClosedError);
    } finally {
      try {
        member.resume();
      } catch {
        // not running
      }
      await client.close();
    }
  });
});
