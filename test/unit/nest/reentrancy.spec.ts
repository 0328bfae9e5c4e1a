import type { INestApplication } from '@nestjs/common';
import { InvalidLockArgumentError, LockService, LockUpgradeError, type LockHandle } from '../../../lib/index.js';
import { defineLocked } from '../../../lib/nest/locked-options.js';
import { InMemoryLockClient } from '../../../lib/testing/index.js';
import { waitFor } from '../../support/wait.js';
import { FireController } from '../../nest/fixtures/fire.controller.js';
import { gate } from '../../nest/fixtures/gates.js';
import { outlivingHandler, outlivingJob } from '../../nest/fixtures/outliving-job.js';
import { JobsService } from '../../nest/fixtures/jobs.service.js';
import { createInMemoryOrdersApp } from '../../nest/fixtures/test-app.js';

/**
 * Re-entrancy lends a lock only to calls that arrive while their chain holds it. The async
 * context outlives the call that set it (timers, promise continuations, fire-and-forget calls),
 * so each test makes a nested call arrive late, or outlive its outer call, and checks that a
 * holder outside the chain (the client itself, which never lends) was excluded meanwhile.
 */
describe('re-entrancy lends only a lock that is held', () => {
  let app: INestApplication;
  let locks: LockService;
  let jobs: JobsService;
  let client: InMemoryLockClient;

  beforeAll(async () => {
    app = await createInMemoryOrdersApp({ waitTimeout: 5000 }, { providers: [JobsService], controllers: [FireController] });
    locks = app.get(LockService);
    jobs = app.get(JobsService);
    client = app.get(InMemoryLockClient);
  });
  afterAll(async () => {
    await app?.close();
  });

  const waiters = async (resource: string) => (await locks.inspect(resource)).waiters.length;

  it('a nested withLock that arrives after the outer one released queues behind another holder', async () => {
    const later = gate();
    let nested: Promise<string> | undefined;
    await locks.withLock('late', async () => {
      // The continuation keeps the async context of this section, which ends first.
      nested = later.promise.then(() => locks.withLock('late', lock => lock.key));
    });
    const held = await client.acquire('late');
    later.open();
    await waitFor(async () => (await waiters('late')) === 1, { message: 'the late nested call queued behind the other holder' });
    await held.release();
    expect(await nested).not.toBe(held.key);
  });

  it('a fire-and-forget call that reaches a @Locked method after the section ended takes the lock itself', async () => {
    const after = gate();
    let fired: Promise<{ key: string; holderKey?: string }> | undefined;
    await locks.withLock('job:F', async () => {
      fired = jobs.later('F', after.promise);
    });
    const held = await client.acquire('job:F');
    after.open();
    await waitFor(async () => (await waiters('job:F')) === 1, { message: 'the fire-and-forget call queued behind the other holder' });
    expect(jobs.started).not.toContain('F');
    await held.release();
    const run = await fired!;
    expect(run.holderKey).toBe(run.key);
  });

  it('a nested holder that outlives its outer section keeps the lock: the outer call resolves only after it', async () => {
    const seen = await outlivingJob(locks, jobs, 'O', r => client.acquire(r));
    expect(seen.outerResolvedWhileJobRan).toBe(false);
    // The nested job ran on the outer call's key, still the holder when it finished.
    expect(seen.run).toMatchObject({ key: seen.outerKey, holderKey: seen.outerKey });
  });

  it('a handler whose nested job outlives it answers only when the job is done, holding the lock till then', async () => {
    const seen = await outlivingHandler(app, locks, jobs, 'H', r => client.acquire(r));
    expect(seen.answeredWhileJobRan).toBe(false);
    expect(seen.status).toBe(201);
    expect(seen.run!.holderKey).toBe(seen.run!.key);
  });

  it('never lends a lock released by hand: a nested call takes it anew', async () => {
    const keys = await locks.withLock('by-hand', async lock => {
      await lock.release();
      return [lock.key, await locks.withLock('by-hand', nested => nested.key)];
    });
    expect(keys[1]).not.toBe(keys[0]);
  });

  it('never lends a lost lock: a nested call on it fails with its LockLostError', async () => {
    const outer = locks.withLock('lost', async () => {
      client.loseLock('lost');
      return locks.withLock('lost', () => 'borrowed');
    });
    await expect(outer).rejects.toMatchObject({ name: 'LockLostError' });
  });

  describe('a nested call into a second LockService (another client)', () => {
    let second: INestApplication;
    beforeAll(async () => {
      second = await createInMemoryOrdersApp();
    });
    afterAll(async () => {
      await second?.close();
    });

    const nestedInSecond = () => {
      const secondLocks = second.get(LockService);
      return locks.withLock('shared-name', outer =>
        secondLocks.withLock('shared-name', async lock => ({
          outer,
          lock,
          current: secondLocks.current(),
          holder: (await secondLocks.inspect('shared-name')).holder,
        })),
      );
    };

    it('takes the lock on its own client instead of borrowing the outer one', async () => {
      const seen = await nestedInSecond();
      expect(seen.holder?.key).toBe(seen.lock.key);
      expect(seen.lock).not.toBe(seen.outer);
    });

    it("reports its own lock as the second service's current()", async () => {
      const seen = await nestedInSecond();
      expect(seen.current).toBe(seen.lock);
    });

    it("leaves the first service's current() on the outer lock", async () => {
      const seen = await locks.withLock('first-only', lock =>
        second.get(LockService).withLock('first-only', () => (locks.current() as LockHandle).key === lock.key),
      );
      expect(seen).toBe(true);
    });
  });

  describe('nested calls in opposite orders', () => {
    const opposite = () => {
      const bothHold = gate();
      let holding = 0;
      const meet = async () => {
        if (++holding === 2) bothHold.open();
        await bothHold.promise;
      };
      const forward = locks.withLock(
        'pair:a',
        async () => (await meet(), locks.withLock('pair:b', () => 'forward', { waitTimeout: 10_000 })),
      );
      const backward = locks.withLock(
        'pair:b',
        async () => (await meet(), locks.withLock('pair:a', () => 'backward', { waitTimeout: 10_000 })),
      );
      return {
        forward,
        backward: backward.then(
          (): Error => {
            throw new Error('the backward call was let through');
          },
          (err: Error) => err,
        ),
      };
    };

    it('refuses at once with LockOrderError the call that would wait for a key ordered before one its chain holds', async () => {
      const started = performance.now();
      const { forward, backward } = opposite();
      expect((await backward).name).toBe('LockOrderError');
      // Waiting in opposite orders would have run into both 10 s timeouts.
      expect(performance.now() - started).toBeLessThan(5000);
      await forward;
    });

    it('names both keys in the LockOrderError', async () => {
      const { forward, backward } = opposite();
      const { message } = await backward;
      expect(message).toContain('"pair:a"');
      expect(message).toContain('"pair:b"');
      await forward;
    });

    it('lets the call in canonical order through', async () => {
      const { forward, backward } = opposite();
      await backward;
      expect(await forward).toBe('forward');
    });

    it('takes a key ordered before a held one when it is free (nothing waits, so nothing can deadlock)', async () => {
      expect(await locks.withLock('order-z', () => locks.withLock('order-a', () => 'free'))).toBe('free');
      expect(await waiters('order-a')).toBe(0);
    });
  });

  describe('modes', () => {
    it('lends an exclusive lock to a nested shared call, and a shared one to a nested shared call', async () => {
      const keys = await locks.withLock('mode:a', outer =>
        locks.withLock('mode:a', inner => [outer.key, inner.key, inner.mode.kind], { shared: true }),
      );
      expect(keys[0]).toBe(keys[1]);
      expect(keys[2]).toBe('exclusive');
      const shared = await locks.withLock('mode:b', outer => locks.withLock('mode:b', inner => inner === outer, { shared: true }), {
        shared: true,
      });
      expect(shared).toBe(true);
    });

    it('refuses shared → exclusive inside one call chain with LockUpgradeError, never waiting on itself', async () => {
      const error = await locks
        .withLock('mode:c', () => locks.withLock('mode:c', () => 'upgraded'), { shared: true })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LockUpgradeError);
      expect(error).toMatchObject({ resource: 'mode:c', held: { kind: 'shared' }, requested: { kind: 'exclusive' } });
      expect((await locks.inspect('mode:c')).holders).toEqual([]);
    });

    it('refuses a semaphore permit inside an exclusive lock of the same name', async () => {
      await expect(locks.withLock('mode:d', () => locks.withLock('mode:d', () => 1, { permits: 2 }))).rejects.toBeInstanceOf(
        LockUpgradeError,
      );
    });

    it('a @Locked-style shared definition is checked when declared', () => {
      expect(() => defineLocked('x', { shared: true, permits: 2 })).toThrow(InvalidLockArgumentError);
      expect(() => defineLocked('x', { permits: 0 })).toThrow(
        new InvalidLockArgumentError('@Locked option permits', 'expected a whole number from 1 to 2147483647, got number 0'),
      );
      expect(defineLocked('x', { permits: 3 }).options).toMatchObject({ permits: 3 });
      expect(defineLocked('x', { shared: true }).options).toMatchObject({ shared: true });
    });
  });
});
