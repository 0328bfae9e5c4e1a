/**
 * When etcd stops answering (SIGSTOP) for longer than the TTL, the holder's signal
 * aborts with LockLostError BEFORE the server could have expired the lease, i.e. before anyone
 * else could be granted the lock.
 *
 * The server cannot expire the lease before (send time of the last keepalive it acknowledged +
 * the TTL it granted): it received that keepalive after we sent it and then granted a full TTL.
 * The test measures those send times itself, on the keepalive stream and the lease grant, rather
 * than trusting the session's own bookkeeping.
 */
import type { Etcd3 } from 'etcd3';
import { EtcdLockClient, LockLostError } from '../../lib/core/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { recordLeaseTraffic } from '../support/lease-traffic.js';
import { abortedAt, observer, readQueue, withTimeout } from './helpers.js';

describe('lease loss while etcd is paused', () => {
  let etcd: EtcdCluster;
  let view: Etcd3;

  beforeAll(async () => {
    etcd = await startEtcd();
    view = observer(etcd.endpoints);
  });

  afterAll(async () => {
    try {
      etcd?.members[0]?.resume();
    } catch {
      // not running
    }
    view?.close();
    await etcd?.close();
  });

  it('aborts the holder before the server could expire the lease; a fresh session works after resume', async () => {
    const member = etcd.members[0]!;
    const client = new EtcdLockClient({ hosts: etcd.endpoints, ttl: 2, waitTimeout: 10_000 });
    const traffic = recordLeaseTraffic(client.etcd);
    try {
      await client.connect();
      const grantedTtl = client.status().grantedTtl!;
      expect(grantedTtl).toBe(2);
      const held = await client.acquire('paused');
      const lost = abortedAt(held.signal);
      // A waiter on the same session must give up too (and not hang on the paused server).
      const waiter = client.acquire('paused').then(
        () => new Error('the waiter was granted the lock'),
        (err: unknown) => ({ err, at: performance.now() }),
      );
      await waitFor(async () => (await readQueue(view, 'locks/paused/')).length === 2, { message: 'waiter queued' });
      // Let at least one keepalive round trip complete, so the deadline is a renewed one.
      await waitFor(() => traffic.acked.length >= 1, { timeoutMs: 3000, message: 'a keepalive acknowledged' });
      expect(held.lost).toBe(false);

      member.pause();
      const pausedAt = performance.now();
      const { at, reason } = await withTimeout(lost, 5000, 'the holder signal to abort');

      // The last renewal etcd acknowledged was sent before the pause (or it is the grant itself;
      // not the grant of the fresh lease the client asks for after the loss, still unanswered).
      const grantSentAt = traffic.grantSentAt.filter(t => t < pausedAt).at(-1)!;
      const lastAckedSend = Math.max(grantSentAt, traffic.acked.filter(t => t < pausedAt).at(-1) ?? -Infinity);
      expect(lastAckedSend).toBeLessThan(pausedAt);
      const earliestServerExpiry = lastAckedSend + grantedTtl * 1000;
      const leadMs = earliestServerExpiry - at;
      console.log(
        `[lease loss] TTL ${grantedTtl} s: signal aborted ${(at - pausedAt).toFixed(0)} ms after the pause, ` +
          `${leadMs.toFixed(1)} ms before the earliest possible server-side expiry ` +
          `(${traffic.acked.length} keepalives acknowledged, ${traffic.sent.length} sent)`,
      );
      expect(leadMs).toBeGreaterThan(0);

      expect(reason).toBeInstanceOf(LockLostError);
      expect((reason as LockLostError).resource).toBe('paused');
      expect((reason as LockLostError).message).toMatch(/^Lock "paused" lost: the lease was not renewed in time/);
      expect(held.lost).toBe(true);
      expect(() => held.throwIfLost()).toThrow(LockLostError);
      const waited = await withTimeout(waiter, 1000, 'the waiter to reject');
      expect(waited).not.toBeInstanceOf(Error);
      const { err, at: waiterAt } = waited as { err: unknown; at: number };
      expect(err).toBeInstanceOf(LockLostError);
      expect((err as Error).message).toMatch(/^Lock "paused" lost: the session was lost while waiting/);
      expect(waiterAt).toBeLessThan(earliestServerExpiry);
      expect(client.status().state).not.toBe('alive');

      member.resume();
      // Our lost lease's keys go (revoked by the session, or expired by the server).
      await waitFor(async () => (await readQueue(view, 'locks/paused/')).length === 0, {
        timeoutMs: 10_000,
        message: 'the lost lease keys are gone',
      });
      const oldLease = held.leaseId;
      await held.release(); // safe after loss

      const again = await client.acquire('paused');
      expect(again.leaseId).not.toBe(oldLease);
      expect(again.lost).toBe(false);
      expect(again.fencingToken).toBeGreaterThan(held.fencingToken);
      expect(client.status()).toMatchObject({ state: 'alive', leaseId: again.leaseId });
      expect((await readQueue(view, 'locks/paused/')).map(e => e.key)).toEqual([again.key]);
      await again.release();
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
