/**
 * Fault suite, semaphores and read/write locks on a 3-member cluster: a semaphore waiter whose
 * lease is revoked while it waits for a permit; readers and a writer contending from worker
 * processes while the Raft leader is SIGKILLed and restarted.
 */
import { jest } from '@jest/globals';
import type { Etcd3 } from 'etcd3';
import { EtcdLockClient, LockLostError, type LockHandle } from '../../lib/core/index.js';
import type { EtcdCluster } from '../support/etcd.js';
import type { FencedStore } from '../support/fenced-store.js';
import { waitFor } from '../support/wait.js';
import {
  checkHistory,
  keysAt,
  maxConcurrent,
  nowNs,
  report,
  reportRevokedWaiters,
  sectionsOf,
  startFaultFixture,
  startFaultWorker,
  stopFaultFixture,
  withTimeout,
  writerOverlaps,
  type FaultWorker,
  type RevokedWaiterRound,
} from './helpers.js';

jest.setTimeout(90_000);

interface Outcome {
  lock?: LockHandle;
  error?: unknown;
  at: number;
}

const outcome = (promise: Promise<LockHandle>): Promise<Outcome> =>
  promise.then(
    lock => ({ lock, at: performance.now() }),
    (error: unknown) => ({ error, at: performance.now() }),
  );

describe('fault suite: semaphores and read/write locks (3-member cluster)', () => {
  let cluster: EtcdCluster;
  let store: FencedStore;
  let view: Etcd3;
  const clients: EtcdLockClient[] = [];

  /** A client talking to one member only. */
  const on = (member: number, prefix: string) => {
    const client = new EtcdLockClient({ hosts: [cluster.endpoints[member]!], prefix, ttl: 5, requestTimeout: 2000 });
    clients.push(client);
    return client;
  };
  const queued = (prefix: string, count: number) =>
    waitFor(async () => (await keysAt(view, prefix)).length === count, { timeoutMs: 10_000, message: `${count} keys under ${prefix}` });

  beforeAll(async () => {
    ({ cluster, store, view } = await startFaultFixture());
  });

  afterAll(async () => {
    await Promise.all(clients.map(c => c.close().catch(() => undefined)));
    await stopFaultFixture({ cluster, store, view });
  });

  it('a semaphore waiter whose lease is revoked while it waits for a permit is never granted one; the next waiter is', async () => {
    const prefix = 'sem-revoked/';
    const permits = 2;
    const [holderClient, victimClient, nextClient] = [on(0, prefix), on(1, prefix), on(2, prefix)];
    const timings = ['release at once', 'release once the victim gave up'];
    const rows: RevokedWaiterRound[] = [];
    for (const [round, timing] of timings.entries()) {
      const resource = `s${round}`;
      const holders = [await holderClient.acquire(resource, { permits }), await holderClient.acquire(resource, { permits })];
      // The victim is the first waiter (it waits for any holder to leave); the next waits on the victim's key.
      const victim = outcome(victimClient.acquire(resource, { permits, waitTimeout: 20_000 }));
      await queued(`${prefix}${resource}/`, 3);
      const next = outcome(nextClient.acquire(resource, { permits, waitTimeout: 20_000 }));
      await queued(`${prefix}${resource}/`, 4);
      const victimKey = (await keysAt(view, `${prefix}${resource}/`))[2]!;

      await view.leaseClient.leaseRevoke({ ID: BigInt(`0x${victimKey.lease}`).toString() });
      const revokedAt = performance.now();
      if (timing === 'release at once') await holders[0]!.release();
      const victimResult = await withTimeout(victim, 10_000, 'the victim to give up');
      if (timing !== 'release at once') await holders[0]!.release();
      const nextResult = await withTimeout(next, 10_000, 'the next waiter');
      rows.push({
        victimGranted: victimResult.lock !== undefined,
        rejectedAfterRevokeMs: victimResult.at - revokedAt,
        nextGranted: nextResult.lock !== undefined,
      });
      expect(victimResult.error).toBeInstanceOf(LockLostError);
      expect(nextResult.lock).toBeDefined();
      // The permit went to the next waiter, beside the holder that stayed: two holders, no more.
      expect((await keysAt(view, `${prefix}${resource}/`)).map(k => k.key)).toEqual([holders[1]!.key, nextResult.lock!.key]);
      await Promise.all([holders[1]!.release(), nextResult.lock!.release()]);
      expect(await keysAt(view, `${prefix}${resource}/`)).toEqual([]);
    }
    const granted = reportRevokedWaiters(
      "semaphore waiter's lease revoked while queued",
      'it is never granted a permit; the next waiter is',
      rows,
      {
        permits,
      },
    );
    expect(granted).toBe(0);
  });

  it('readers and a writer contending while the leader is SIGKILLed, then restarted: never a reader beside the writer', async () => {
    // As in cluster-faults.spec.ts: above what a failover costs a session, so that no loss blurs the check.
    const TTL_S = 5;
    const prefix = 'rw-leader/';
    const resource = 'doc';
    const modes = [{ shared: true }, { shared: true }, { shared: true }, {}];
    const workers = await Promise.all(
      modes.map((_, i) =>
        startFaultWorker(i < 3 ? `reader${i}` : 'writer', {
          endpoints: cluster.endpoints,
          store: store.url,
          ttl: TTL_S,
          prefix,
          requestTimeoutMs: 1500,
        }),
      ),
    );
    // Readers hold longer than the writer, so that readers meet each other between writes.
    for (const [i, w] of workers.entries()) {
      w.send({
        cmd: 'contend',
        resource,
        iterations: 100_000,
        holdMs: i < 3 ? 20 : 5,
        waitTimeout: 10_000,
        deadlineMs: 60_000,
        ...modes[i],
      });
    }
    const sectionCount = (since: bigint) => workers.flatMap(w => w.all('section')).filter(m => BigInt(m.enter as string) > since).length;
    const writerSections = (since: bigint) => workers[3]!.all('section').filter(m => BigInt(m.enter as string) > since).length;
    const enough = (since: bigint, what: string) =>
      waitFor(() => sectionCount(since) >= 20 && writerSections(since) >= 3, {
        timeoutMs: 20_000,
        intervalMs: 20,
        message: `20 sections, 3 of them the writer's, ${what}`,
      });

    await enough(0n, 'before the fault');
    const leader = await cluster.leader();
    const killedAt = nowNs();
    await leader.kill('SIGKILL');
    await enough(killedAt, 'after the leader died');
    const restartedAt = nowNs();
    await leader.restart();
    await enough(restartedAt, 'after the old leader rejoined');
    for (const w of workers) w.send({ cmd: 'stop-contending' });
    await Promise.all(workers.map(w => w.next(m => m.type === 'contend-done', { timeoutMs: 20_000 })));

    const { sections, grants } = sectionsOf(workers, r => `${prefix}${r}/`);
    const overlapping = writerOverlaps(sections);
    const readersAtOnce = maxConcurrent(sections.filter(s => s.shared));
    const history = await checkHistory(view, grants);
    const losses = workers.flatMap((w: FaultWorker) => w.all('lost')).length;
    const failures = workers.flatMap(w => w.all('acquire-failed'));
    const untyped = failures.filter(f => !['EtcdUnavailableError', 'LockTimeoutError'].includes(f.error as string));
    // Readers' tokens interleave (they hold together), so only the writer's writes must all pass the fence.
    const writerRejected = store.rejected(resource).filter(w => w.writer === 'writer').length;
    await Promise.all(workers.map(w => w.close()));
    await waitFor(async () => (await keysAt(view, prefix)).length === 0, { message: 'no keys left' });
    report({
      scenario: 'readers + writer contending, etcd leader SIGKILL, then restart',
      bound: 'never a reader beside the writer (0 writer overlaps, 0 history violations); readers still share',
      figures: {
        ttlS: TTL_S,
        readers: 3,
        writers: 1,
        grants: grants.length,
        writerGrants: sections.filter(s => !s.shared).length,
        writerOverlaps: overlapping,
        readersAtOnceMax: readersAtOnce,
        historyViolations: history.violations.length,
        historyCheckedAtSeenRevision: history.checkedAtSeen,
        writerWritesRejected: writerRejected,
        losses,
        acquireFailures: failures.length,
        untypedFailures: untyped.length,
      },
      pass: overlapping === 0 && history.violations.length === 0 && readersAtOnce >= 2 && writerRejected === 0 && untyped.length === 0,
    });
    expect(overlapping).toBe(0);
    expect(history.violations).toEqual([]);
    expect(readersAtOnce).toBeGreaterThanOrEqual(2);
    expect(writerRejected).toBe(0);
    expect(untyped).toEqual([]);
  });
});
