/**
 * An acquisition that gives up (wait timeout, AbortSignal, try-only) leaves no key
 * behind, and the queue is not stalled: a later waiter still gets the lock when the holder lets go.
 *
 * Every "later waiter" below queues on the SAME client (same lease) as the one that gave up, so a
 * leftover key would stall it for as long as that lease lives, i.e. for ever: the test would fail.
 */
import type { Etcd3 } from 'etcd3';
import { EtcdLockClient, LockBusyError, LockTimeoutError } from '../../lib/core/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { countRpcs } from '../support/rpc-counter.js';
import { observer, readQueue, storeRevision, track } from './helpers.js';

describe('acquisitions that give up leave nothing behind', () => {
  let etcd: EtcdCluster;
  let holderClient: EtcdLockClient;
  let client: EtcdLockClient;
  let view: Etcd3;

  const keysOf = async (resource: string) => (await readQueue(view, `locks/${resource}/`)).map(e => e.key);
  const onlyKeyIs = async (resource: string, key: string) => {
    let seen: string[] = [];
    await waitFor(
      async () => {
        seen = await keysOf(resource);
        return seen.length === 1 && seen[0] === key;
      },
      { message: () => `only ${key} left under locks/${resource}/ (have ${JSON.stringify(seen)})` },
    );
  };

  beforeAll(async () => {
    etcd = await startEtcd();
    view = observer(etcd.endpoints);
    holderClient = new EtcdLockClient({ hosts: etcd.endpoints, ttl: 5 });
    client = new EtcdLockClient({ hosts: etcd.endpoints, ttl: 5, waitTimeout: 10_000 });
    await Promise.all([holderClient.connect(), client.connect()]);
  });

  afterAll(async () => {
    await client?.close();
    await holderClient?.close();
    view?.close();
    await etcd?.close();
  });

  /** The holder releases; a waiter of `client` that queued after the give-up must get the lock. */
  async function queueNotStalled(resource: string, holder: { release(): Promise<void> }) {
    const next = track(client.acquire(resource, { waitTimeout: 5000 }));
    await waitFor(async () => (await keysOf(resource)).length === 2, { message: 'the next waiter queued' });
    expect(next.outcome.status).toBe('pending');
    await holder.release();
    const handle = await next.promise;
    expect(await keysOf(resource)).toEqual([handle.key]);
    await handle.release();
    expect(await keysOf(resource)).toEqual([]);
  }

  it('wait timeout: rejects with LockTimeoutError after the timeout, and removes its key', async () => {
    const holder = await holderClient.acquire('timeout');
    const started = performance.now();
    const err = await client.acquire('timeout', { waitTimeout: 300 }).catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(err).toBeInstanceOf(LockTimeoutError);
    expect((err as LockTimeoutError).message).toBe('Timed out after 300 ms waiting for lock "timeout"');
    expect((err as LockTimeoutError).resource).toBe('timeout');
    expect((err as LockTimeoutError).waitTimeoutMs).toBe(300);
    expect(elapsed).toBeGreaterThanOrEqual(295);
    expect(elapsed).toBeLessThan(2000);
    await onlyKeyIs('timeout', holder.key);
    await queueNotStalled('timeout', holder);
  });

  it('the client default waitTimeout applies too', async () => {
    const shortWait = new EtcdLockClient({ hosts: etcd.endpoints, ttl: 5, waitTimeout: 200 });
    try {
      const holder = await holderClient.acquire('default-timeout');
      await expect(shortWait.acquire('default-timeout')).rejects.toThrow(new LockTimeoutError('default-timeout', 200));
      await onlyKeyIs('default-timeout', holder.key);
      await holder.release();
    } finally {
      await shortWait.close();
    }
  });

  it('AbortSignal while waiting: rejects with the signal reason, and removes its key', async () => {
    const holder = await holderClient.acquire('abort');
    const controller = new AbortController();
    const waiting = track(client.acquire('abort', { signal: controller.signal }));
    await waitFor(async () => (await keysOf('abort')).length === 2, { message: 'the waiter queued' });
    const reason = new Error('caller gave up');
    controller.abort(reason);
    await expect(waiting.promise).rejects.toBe(reason);
    await onlyKeyIs('abort', holder.key);
    await queueNotStalled('abort', holder);
  });

  it('AbortSignal fired while the put is still in flight: the key is removed once the put lands', async () => {
    const holder = await holderClient.acquire('abort-racing');
    const rpcs = countRpcs(client.etcd);
    try {
      const before = await storeRevision(view);
      const rounds = 3;
      for (let i = 0; i < rounds; i++) {
        const controller = new AbortController();
        // Abort the moment the enqueue transaction has been sent, before etcd answers it.
        rpcs.onCall = call => call === 'KV.txnEncoded' && controller.abort(new Error(`gave up #${i}`));
        await expect(client.acquire('abort-racing', { signal: controller.signal })).rejects.toThrow(`gave up #${i}`);
        rpcs.onCall = undefined;
      }
      await onlyKeyIs('abort-racing', holder.key);
      // Each put did land (one revision) and was deleted afterwards (one more): nothing was skipped.
      await waitFor(async () => (await storeRevision(view)) === before + BigInt(2 * rounds), {
        message: 'every put and its clean-up delete committed',
      });
      expect(await storeRevision(view)).toBe(before + BigInt(2 * rounds));
    } finally {
      rpcs.restore();
    }
    await queueNotStalled('abort-racing', holder);
  });

  it('an already aborted signal rejects with its reason and writes nothing', async () => {
    const before = await storeRevision(view);
    const reason = new Error('too late');
    await expect(client.acquire('pre-aborted', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(await storeRevision(view)).toBe(before);
    expect(await keysOf('pre-aborted')).toEqual([]);
  });

  it('AbortSignal.timeout() works as a per-call deadline', async () => {
    const holder = await holderClient.acquire('abort-timeout');
    const err = await client.acquire('abort-timeout', { signal: AbortSignal.timeout(200) }).catch((e: unknown) => e);
    expect((err as Error).name).toBe('TimeoutError');
    await onlyKeyIs('abort-timeout', holder.key);
    await queueNotStalled('abort-timeout', holder);
  });

  it('try-only (tryAcquire, waitTimeout 0) on a held lock writes nothing at all', async () => {
    const holder = await holderClient.acquire('try');
    const before = await storeRevision(view);
    expect(await client.tryAcquire('try')).toBeNull();
    const err = await client.acquire('try', { waitTimeout: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockBusyError);
    expect((err as LockBusyError).message).toBe('Lock "try" is held by another owner');
    expect((err as LockBusyError).resource).toBe('try');
    // No put and no delete happened: the store revision did not move.
    expect(await storeRevision(view)).toBe(before);
    expect(await keysOf('try')).toEqual([holder.key]);
    await queueNotStalled('try', holder);
  });

  it('try-only behind a queue (holder + waiter) refuses and leaves the queue as it was', async () => {
    const holder = await holderClient.acquire('try-queue');
    const waiter = track(holderClient.acquire('try-queue'));
    await waitFor(async () => (await keysOf('try-queue')).length === 2, { message: 'a waiter queued' });
    expect(await client.tryAcquire('try-queue')).toBeNull();
    expect((await keysOf('try-queue')).length).toBe(2);
    await holder.release();
    await (await waiter.promise).release();
  });

  it('a list of resources that times out on the second releases the first', async () => {
    const holder = await holderClient.acquire('set-b');
    const err = await client.acquire(['set-a', 'set-b'], { waitTimeout: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockTimeoutError);
    await waitFor(async () => (await keysOf('set-a')).length === 0, { message: 'set-a released' });
    await onlyKeyIs('set-b', holder.key);
    // set-a is free for anyone at once.
    const a = await holderClient.tryAcquire('set-a');
    expect(a).not.toBeNull();
    await a!.release();
    await queueNotStalled('set-b', holder);
  });

  it('a try-only list where one resource is busy takes nothing', async () => {
    const holder = await holderClient.acquire('tryset-b');
    expect(await client.tryAcquire(['tryset-a', 'tryset-b'])).toBeNull();
    await waitFor(async () => (await keysOf('tryset-a')).length === 0, { message: 'tryset-a released' });
    expect(await keysOf('tryset-b')).toEqual([holder.key]);
    await holder.release();
  });
});
