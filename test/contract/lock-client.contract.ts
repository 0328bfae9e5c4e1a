import {
  InvalidLockArgumentError,
  LockBusyError,
  LockHandle,
  LockModeMismatchError,
  LockLostError,
  LockSet,
  LockTimeoutError,
  type LockClient,
  type LockEvent,
  type LockInspection,
} from '../../lib/index.js';
import { waitFor } from '../support/wait.js';

/** One implementation of the lock client under test, with a way to lose its lease as its backend would. */
export interface ContractTarget {
  client: LockClient;
  /** Makes the backend drop the client's lease (etcd: revoke it; in memory: loseLease()). */
  loseLease(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The behaviour every LockClient must show. Run against the etcd client and the in-memory one,
 * it keeps the test double honest.
 */
function tokenOf(view: LockInspection, key: string): number {
  return Number([...view.holders, ...view.waiters].find(entry => entry.key === key)!.fencingToken);
}

export function lockClientContract(name: string, create: () => Promise<ContractTarget>): void {
  describe(`LockClient contract: ${name}`, () => {
    let target: ContractTarget;
    let client: LockClient;
    let n = 0;
    /** A fresh resource name per test, so tests never share a queue. */
    let resource: string;

    beforeAll(async () => {
      target = await create();
      client = target.client;
    });
    afterAll(async () => {
      await target?.close();
    });
    beforeEach(() => {
      resource = `contract-${++n}`;
    });

    /**
     * Starts an acquisition and resolves once it is queued (visible to inspect()), with the
     * pending acquisition wrapped (an async function returning it bare would wait for the grant).
     */
    async function queue(position: number, options?: Parameters<LockClient['acquire']>[1]): Promise<{ granted: Promise<LockHandle> }> {
      const granted = client.acquire(resource, options);
      granted.catch(() => undefined);
      await waitFor(async () => (await client.inspect(resource)).waiters.length === position, { message: `waiter #${position} queued` });
      return { granted };
    }

    it('grants in arrival order, with rising fencing tokens', async () => {
      const holder = await client.acquire(resource);
      const waiters = [];
      for (let i = 1; i <= 4; i++) waiters.push(await queue(i));
      const order: bigint[] = [];
      let previous: LockHandle = holder;
      for (const waiter of waiters) {
        await previous.release();
        const next = await waiter.granted;
        order.push(next.fencingToken);
        previous = next;
      }
      await previous.release();
      expect(order.every((token, i) => token > (i === 0 ? holder.fencingToken : order[i - 1]))).toBe(true);
      expect(await client.inspect(resource)).toEqual({ resource, holder: undefined, holders: [], waiters: [] });
    });

    it('never lets two holders in at once', async () => {
      let inside = 0;
      let max = 0;
      await Promise.all(
        Array.from({ length: 10 }, () =>
          client.withLock(resource, async () => {
            max = Math.max(max, ++inside);
            await new Promise(resolve => setTimeout(resolve, 2));
            inside--;
          }),
        ),
      );
      expect(max).toBe(1);
    });

    it('tryAcquire returns null when held, queues nothing, and takes a free lock', async () => {
      const holder = await client.acquire(resource);
      expect(await client.tryAcquire(resource)).toBeNull();
      expect((await client.inspect(resource)).waiters).toEqual([]);
      await holder.release();
      const taken = await client.tryAcquire(resource);
      expect(taken).toBeInstanceOf(LockHandle);
      await taken!.release();
    });

    it('times out with LockTimeoutError, leaves no waiter behind, and does not stall the queue', async () => {
      const holder = await client.acquire(resource);
      const error = await client.acquire(resource, { waitTimeout: 100 }).catch(e => e);
      expect(error).toBeInstanceOf(LockTimeoutError);
      expect(error.message).toBe(`Timed out after 100 ms waiting for lock "${resource}"`);
      await waitFor(async () => (await client.inspect(resource)).waiters.length === 0, { message: 'timed-out waiter gone' });
      const next = await queue(1);
      await holder.release();
      await (await next.granted).release();
    });

    it('gives up waiting with the signal reason when aborted, leaving no waiter', async () => {
      const holder = await client.acquire(resource);
      const controller = new AbortController();
      const { granted } = await queue(1, { signal: controller.signal });
      const reason = new Error('caller gave up');
      controller.abort(reason);
      await expect(granted).rejects.toBe(reason);
      await waitFor(async () => (await client.inspect(resource)).waiters.length === 0, { message: 'aborted waiter gone' });
      await holder.release();
    });

    it('aborts the held lock with LockLostError when the lease is lost, and recovers with a new lease', async () => {
      const held = await client.acquire(resource);
      const running = client.withLock(`${resource}-b`, () => new Promise(() => undefined));
      running.catch(() => undefined);
      await waitFor(async () => (await client.inspect(`${resource}-b`)).holder !== undefined, { message: 'withLock holds' });
      await target.loseLease();
      await waitFor(() => held.signal.aborted, { timeoutMs: 5000, message: 'signal aborted after lease loss' });
      expect(held.signal.reason).toBeInstanceOf(LockLostError);
      expect(() => held.throwIfLost()).toThrow(LockLostError);
      await expect(running).rejects.toBeInstanceOf(LockLostError);
      await held.release(); // safe after loss
      const again = await client.acquire(resource);
      expect(again.fencingToken > held.fencingToken).toBe(true);
      expect(again.leaseId).not.toBe(held.leaseId);
      await again.release();
    });

    it('takes several resources in one canonical order, so opposite orders cannot deadlock', async () => {
      const [a, b] = [`${resource}-a`, `${resource}-b`];
      const set = await client.acquire([b, a]);
      expect(set).toBeInstanceOf(LockSet);
      expect(set.resources).toEqual([a, b]);
      await set.release();
      await Promise.all(Array.from({ length: 6 }, (_, i) => client.withLock(i % 2 ? [a, b] : [b, a], () => undefined)));
      expect((await client.inspect(a)).holder).toBeUndefined();
    });

    it('releases idempotently', async () => {
      const held = await client.acquire(resource);
      await Promise.all([held.release(), held.release()]);
      await held.release();
      const next = await client.acquire(resource, { waitTimeout: 1000 });
      await next.release();
    });

    it('reports waiting, acquired, released and failed events', async () => {
      const events: LockEvent[] = [];
      const unsubscribe = client.events.subscribe(event => 'resource' in event && event.resource === resource && events.push(event));
      try {
        const holder = await client.acquire(resource);
        const waiter = await queue(1);
        await waitFor(() => events.some(e => e.type === 'waiting'), { message: 'waiting event' });
        await holder.release();
        await (await waiter.granted).release();
        await client.acquire(resource, { waitTimeout: 0 }).then(h => h.release());
        const blocker = await client.acquire(resource);
        await client.tryAcquire(resource);
        await blocker.release();
      } finally {
        unsubscribe();
      }
      expect(events.map(e => e.type)).toEqual([
        'acquired',
        'waiting',
        'released',
        'acquired',
        'released',
        'acquired',
        'released',
        'acquired',
        'failed',
        'released',
      ]);
      const waited = events.find(e => e.type === 'acquired' && e.waitedMs > 0);
      expect(waited).toBeDefined();
    });

    it('inspects the holder and the waiters in grant order', async () => {
      const holder = await client.acquire(resource);
      const { granted: first } = await queue(1);
      const view = await client.inspect(resource);
      expect(view.holder).toMatchObject({ key: holder.key, leaseId: holder.leaseId, fencingToken: holder.fencingToken });
      expect(view.holder!.queuedAt).toBeInstanceOf(Date);
      expect(view.waiters).toHaveLength(1);
      expect(view.waiters[0].fencingToken > holder.fencingToken).toBe(true);
      await holder.release();
      await (await first).release();
    });

    /**
     * Runs a section per mode, all at once; resolves with the most that overlapped and whether a
     * writer ever had company. A section stays until `fill` are inside (or every section has
     * entered), so that reaching `fill` does not depend on timing.
     */
    async function overlapOf(
      modes: Array<{ shared?: boolean; permits?: number }>,
      fill = 1,
    ): Promise<{ max: number; writerWithOthers: boolean }> {
      let inside = 0;
      let entered = 0;
      let writers = 0;
      let max = 0;
      let writerWithOthers = false;
      await Promise.all(
        modes.map(mode =>
          client.withLock(
            resource,
            async () => {
              inside++;
              entered++;
              if (!mode.shared && mode.permits === undefined) writers++;
              max = Math.max(max, inside);
              if (writers > 0 && inside > 1) writerWithOthers = true;
              await waitFor(() => inside >= fill || entered === modes.length, { message: `${fill} inside`, intervalMs: 2 });
              await new Promise(resolve => setTimeout(resolve, 5));
              if (!mode.shared && mode.permits === undefined) writers--;
              inside--;
            },
            mode,
          ),
        ),
      );
      return { max, writerWithOthers };
    }

    describe('semaphore', () => {
      it('grants up to N holders at once, queues the next in arrival order, and lets it in when one leaves', async () => {
        const held = await Promise.all([1, 2, 3].map(() => client.acquire(resource, { permits: 3 })));
        const next = await queue(1, { permits: 3 });
        const view = await client.inspect(resource);
        expect(view.holders.map(h => h.key)).toEqual(held.map(h => h.key).sort((a, b) => tokenOf(view, a) - tokenOf(view, b)));
        expect(view.holders[0].mode).toEqual({ kind: 'semaphore', permits: 3 });
        expect(await client.tryAcquire(resource, { permits: 3 })).toBeNull();
        expect((await client.inspect(resource)).waiters).toHaveLength(1);
        await held[1].release();
        const granted = await next.granted;
        expect(granted.fencingToken > held[2].fencingToken).toBe(true);
        expect(granted.mode).toEqual({ kind: 'semaphore', permits: 3 });
        await Promise.all([held[0], held[2], granted].map(h => h.release()));
        expect(await client.inspect(resource)).toEqual({ resource, holder: undefined, holders: [], waiters: [] });
      });

      it('never lets more than N in at once', async () => {
        const { max } = await overlapOf(
          Array.from({ length: 12 }, () => ({ permits: 3 })),
          3,
        );
        expect(max).toBe(3);
      });

      it('refuses another number of permits on the same name, naming both, and queues nothing', async () => {
        const held = await client.acquire(resource, { permits: 3 });
        const error = await client.acquire(resource, { permits: 2 }).catch(e => e);
        expect(error).toBeInstanceOf(LockModeMismatchError);
        expect(error).toMatchObject({
          resource,
          requested: { kind: 'semaphore', permits: 2 },
          existing: { kind: 'semaphore', permits: 3 },
        });
        expect(error.message).toBe(`Lock "${resource}" is in use as a semaphore of 3 permits; refused a semaphore of 2 permits on it`);
        expect((await client.inspect(resource)).waiters).toEqual([]);
        await held.release();
        // Once the semaphore is gone, the name is free for another size.
        await (await client.acquire(resource, { permits: 2 })).release();
      });

      it('a semaphore waiter that times out leaves no key and does not stall the queue', async () => {
        const held = await client.acquire(resource, { permits: 1 });
        await expect(client.acquire(resource, { permits: 1, waitTimeout: 100 })).rejects.toBeInstanceOf(LockTimeoutError);
        await waitFor(async () => (await client.inspect(resource)).waiters.length === 0, { message: 'timed-out waiter gone' });
        const next = await queue(1, { permits: 1 });
        await held.release();
        await (await next.granted).release();
      });
    });

    describe('read/write lock', () => {
      it('lets readers hold together, and a reader arriving after a queued writer waits behind it', async () => {
        const readers = await Promise.all([1, 2].map(() => client.acquire(resource, { shared: true })));
        expect((await client.inspect(resource)).holders).toHaveLength(2);
        const writer = await queue(1);
        expect(await client.tryAcquire(resource, { shared: true })).toBeNull();
        const lateReader = await queue(2, { shared: true });
        await readers[0].release();
        expect((await client.inspect(resource)).waiters).toHaveLength(2);
        await readers[1].release();
        const written = await writer.granted;
        expect((await client.inspect(resource)).waiters).toHaveLength(1);
        await written.release();
        const read = await lateReader.granted;
        expect(read.mode).toEqual({ kind: 'shared' });
        expect(read.fencingToken > written.fencingToken).toBe(true);
        await read.release();
      });

      it('never lets a writer in with anyone else, and lets readers overlap', async () => {
        const modes = Array.from({ length: 16 }, (_, i) => (i % 4 === 3 ? {} : { shared: true }));
        const { max, writerWithOthers } = await overlapOf(modes);
        expect(writerWithOthers).toBe(false);
        expect(max).toBeGreaterThan(1);
      });

      it('tryAcquire shared succeeds beside readers and returns null beside a writer', async () => {
        const reader = await client.acquire(resource, { shared: true });
        const second = await client.tryAcquire(resource, { shared: true });
        expect(second).toBeInstanceOf(LockHandle);
        expect(await client.tryAcquire(resource)).toBeNull();
        await Promise.all([reader.release(), second!.release()]);
        const writer = await client.acquire(resource);
        await expect(client.acquire(resource, { shared: true, waitTimeout: 0 })).rejects.toBeInstanceOf(LockBusyError);
        expect((await client.inspect(resource)).waiters).toEqual([]);
        await writer.release();
      });

      it('refuses a shared lock on a semaphore', async () => {
        const held = await client.acquire(resource, { permits: 2 });
        await expect(client.acquire(resource, { shared: true })).rejects.toBeInstanceOf(LockModeMismatchError);
        await waitFor(async () => (await client.inspect(resource)).waiters.length === 0, { message: 'refused reader gone' });
        await held.release();
      });
    });

    it('refuses bad permits and shared options with InvalidLockArgumentError', async () => {
      for (const permits of [0, -1, 1.5, Number.NaN, Infinity, 2 ** 31]) {
        await expect(client.acquire(resource, { permits })).rejects.toThrow(InvalidLockArgumentError);
      }
      await expect(client.acquire(resource, { permits: '3' as unknown as number })).rejects.toThrow(
        new InvalidLockArgumentError('permits', 'expected a whole number from 1 to 2147483647, got "3"'),
      );
      await expect(client.acquire(resource, { shared: 'yes' as unknown as boolean })).rejects.toThrow(
        new InvalidLockArgumentError('shared', 'expected a boolean, got "yes"'),
      );
      await expect(client.acquire(resource, { shared: true, permits: 2 })).rejects.toThrow(InvalidLockArgumentError);
      expect((await client.inspect(resource)).holders).toEqual([]);
    });

    it('refuses an empty resource name with InvalidLockArgumentError', async () => {
      await expect(client.acquire('')).rejects.toThrow(new InvalidLockArgumentError('resource', 'must not be empty'));
    });
  });
}
