import { jest } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { EtcdLockClient, LockService } from '../../lib/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { FireController } from './fixtures/fire.controller.js';
import { gate } from './fixtures/gates.js';
import { outlivingHandler, outlivingJob } from './fixtures/outliving-job.js';
import { JobsService } from './fixtures/jobs.service.js';
import { createOrdersApp, uniquePrefix } from './fixtures/test-app.js';

jest.setTimeout(30_000);

/**
 * Re-entrancy lends a lock only to calls that arrive while their chain holds it. The async
 * context outlives the call that set it (timers, promise continuations, fire-and-forget calls),
 * so each test makes a nested call arrive late, or outlive its outer call, and checks with a
 * second application (its own client and lease, same prefix) that exclusion held. These are the
 * smoke tests on etcd; test/unit/nest/reentrancy.spec.ts specifies the rest in memory.
 */
describe('re-entrancy lends only a lock that is held (real etcd)', () => {
  let etcd: EtcdCluster;
  let app: INestApplication;
  let locks: LockService;
  let jobs: JobsService;
  let other: EtcdLockClient;
  let prefix: string;

  beforeAll(async () => {
    etcd = await startEtcd();
    prefix = uniquePrefix('reentrancy');
    app = await createOrdersApp(
      { hosts: etcd.endpoints, prefix, ttl: 5, waitTimeout: 5000 },
      { providers: [JobsService], controllers: [FireController] },
    );
    locks = app.get(LockService);
    jobs = app.get(JobsService);
    other = new EtcdLockClient({ hosts: etcd.endpoints, prefix, ttl: 5 });
  });
  afterAll(async () => {
    await other?.close();
    await app?.close();
    await etcd?.close();
  });

  const waiters = async (resource: string) => (await locks.inspect(resource)).waiters.length;

  it('a nested withLock that arrives after the outer one released takes the lock itself, behind another application', async () => {
    const later = gate();
    let nested: Promise<{ otherHeld: boolean; holderKey?: string; key: string }> | undefined;
    let otherHolds = false;
    await locks.withLock('late', async () => {
      // The continuation keeps the async context of this section, which ends first.
      nested = later.promise.then(() =>
        locks.withLock('late', async lock => ({
          otherHeld: otherHolds,
          holderKey: (await locks.inspect('late')).holder?.key,
          key: lock.key,
        })),
      );
    });
    const held = await other.acquire('late');
    otherHolds = true;
    later.open();
    await waitFor(async () => (await waiters('late')) === 1, { message: 'the late nested call queued behind the other application' });
    otherHolds = false;
    await held.release();
    const seen = await nested!;
    expect(seen.otherHeld).toBe(false);
    expect(seen.holderKey).toBe(seen.key);
  });

  it('a nested holder that outlives its outer section keeps the lock: the outer call resolves only after it', async () => {
    const seen = await outlivingJob(locks, jobs, 'O', r => other.acquire(r));
    expect(seen.outerResolvedWhileJobRan).toBe(false);
    // The nested job ran on the outer call's key, still the holder when it finished.
    expect(seen.run).toMatchObject({ key: seen.outerKey, holderKey: seen.outerKey });
  });

  it('a handler whose nested job outlives it answers only when the job is done, and holds the lock till then', async () => {
    const seen = await outlivingHandler(app, locks, jobs, 'H', r => other.acquire(r));
    expect(seen.answeredWhileJobRan).toBe(false);
    expect(seen.status).toBe(201);
    expect(seen.run!.holderKey).toBe(seen.run!.key);
  });

  it('refuses, at once and naming both keys, a nested call that would wait for a key ordered before one its chain holds', async () => {
    const bothHold = gate();
    let holding = 0;
    const meet = async () => {
      if (++holding === 2) bothHold.open();
      await bothHold.promise;
    };
    const started = performance.now();
    const forward = locks.withLock('pair:a', async () => {
      await meet();
      return locks.withLock('pair:b', () => 'forward', { waitTimeout: 10_000 });
    });
    const backward = locks.withLock('pair:b', async () => {
      await meet();
      return locks.withLock('pair:a', () => 'backward', { waitTimeout: 10_000 });
    });
    const error = await backward.catch(e => e);
    // Waiting in opposite orders ran into both 10 s timeouts; the refusal comes after a try-only read.
    expect(performance.now() - started).toBeLessThan(5000);
    expect(error.name).toBe('LockOrderError');
    expect(error.message).toContain('"pair:a"');
    expect(error.message).toContain('"pair:b"');
    expect(await forward).toBe('forward');
  });
});
