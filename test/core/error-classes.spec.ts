/**
 * Issue 14 point 10: an error is retried only when retrying can help. Permanent failures (the
 * etcd3 client closed, a response that does not decode, a malformed request) are not retried as
 * EtcdUnavailableError; "requested lease not found" loses the lock; waiters cut off by close()
 * get LockClientClosedError.
 */
import { BrokenCircuitError } from 'cockatiel';
import {
  ClientClosedError,
  Etcd3,
  EtcdError,
  EtcdLeaseInvalidError,
  GRPCDeadlineExceededError,
  GRPCInvalidArgumentError,
  GRPCUnavailableError,
} from 'etcd3';
import { EtcdLockClient, EtcdRequestError, EtcdUnavailableError, LockClientClosedError, LockLostError } from '../../lib/index.js';
import { toLockError } from '../../lib/core/etcd-errors.js';
import { etcdctl, startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { withTimeout } from './helpers.js';

describe('toLockError: what is worth retrying', () => {
  it.each([
    ['a closed etcd3 client', new ClientClosedError('KV'), LockClientClosedError],
    ['requested lease not found', new EtcdLeaseInvalidError('etcdserver: requested lease not found'), LockLostError],
    ['an unreachable member', new GRPCUnavailableError('14 UNAVAILABLE: No connection established'), EtcdUnavailableError],
    ['a deadline', new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED'), EtcdUnavailableError],
    ['a leader change', new EtcdError('etcdserver: leader changed'), EtcdUnavailableError],
    ['an open circuit breaker', new BrokenCircuitError(), EtcdUnavailableError],
    ['a response that does not decode', new Error('etcd response: truncated protobuf message'), EtcdRequestError],
    ['a malformed request', new GRPCInvalidArgumentError('3 INVALID_ARGUMENT: etcdserver: key is not provided'), EtcdRequestError],
    ['a bug of ours', new TypeError("Cannot read properties of undefined (reading 'kvs')"), EtcdRequestError],
  ])('%s', (_, err, type) => {
    const mapped = toLockError(err, 'acquiring lock "r"', 'r');
    expect(mapped).toBeInstanceOf(type);
    expect(mapped.cause).toBe(err);
  });
});

describe('errors on real etcd', () => {
  let etcd: EtcdCluster;

  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.close();
  });

  it('a waiter cut off by close() rejects with LockClientClosedError, not LockLostError', async () => {
    const holder = new EtcdLockClient({ hosts: etcd.endpoints, prefix: 'closed/' });
    const client = new EtcdLockClient({ hosts: etcd.endpoints, prefix: 'closed/' });
    try {
      const held = await holder.acquire('r');
      const waiting = client.acquire('r').catch((err: unknown) => err);
      await waitFor(async () => (await holder.inspect('r')).waiters.length === 1, { message: 'the waiter queued' });
      await client.close();
      const error = await waiting;
      expect(error).toBeInstanceOf(LockClientClosedError);
      await held.release();
    } finally {
      await Promise.all([holder.close(), client.close()]);
    }
  });

  it('a waiter whose etcd3 client is closed under it rejects with LockClientClosedError at its next call instead of retrying it for ever', async () => {
    const etcd3 = new Etcd3({ hosts: etcd.endpoints });
    const holder = new EtcdLockClient({ hosts: etcd.endpoints, prefix: 'closed-etcd3/' });
    const client = new EtcdLockClient({ client: etcd3, prefix: 'closed-etcd3/', waitTimeout: Infinity });
    try {
      const held = await holder.acquire('r');
      const waiting = client.acquire('r').catch((err: unknown) => err);
      await waitFor(async () => (await holder.inspect('r')).waiters.length === 1, { message: 'the waiter queued' });
      etcd3.close(); // the application shuts its own client down first (its open streams live on)
      await held.release(); // the waiter's watch fires, and its re-read meets the closed client
      const error = await withTimeout(waiting, 5000, 'the waiter to give up');
      expect(error).toBeInstanceOf(LockClientClosedError);
    } finally {
      await Promise.all([holder.close(), client.close()]);
    }
  });

  it('"requested lease not found" (our lease revoked behind our back) queues once more on a fresh lease instead of retrying as unavailable', async () => {
    const client = new EtcdLockClient({ hosts: etcd.endpoints, prefix: 'revoked/', ttl: 30 });
    try {
      await client.connect();
      const leaseId = client.status().leaseId!;
      const revoked = await etcdctl(etcd.endpoints, ['lease', 'revoke', leaseId]);
      expect(revoked.code).toBe(0);
      // The session cannot know yet: its next renewal is 10 s away.
      const started = performance.now();
      const lock = await client.acquire('r');
      expect(performance.now() - started).toBeLessThan(1000); // not retried until dialTimeout
      expect(lock.leaseId).not.toBe(leaseId);
      expect(client.status().leaseId).toBe(lock.leaseId);
      await lock.release();
    } finally {
      await client.close();
    }
  });
});
