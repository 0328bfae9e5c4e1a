/**
 * Fault suite, faults of the etcd CLUSTER (3 members) under load from worker processes: the Raft
 * leader SIGKILLed during contention and later restarted with its data dir; two of three members
 * killed (quorum lost) for longer than the TTL, then restored.
 */
import { jest } from '@jest/globals';
import type { Etcd3 } from 'etcd3';
import type { EtcdCluster, EtcdMember } from '../support/etcd.js';
import type { FencedStore } from '../support/fenced-store.js';
import { waitFor } from '../support/wait.js';
import {
  checkHistory,
  fifoInversions,
  keysAt,
  liveLeases,
  msBetween,
  nowNs,
  observer,
  overlaps,
  report,
  sectionsOf,
  startFaultFixture,
  startFaultWorker,
  stopFaultFixture,
  type FaultWorker,
  type Message,
} from './helpers.js';

jest.setTimeout(90_000);

describe('fault suite: etcd cluster faults (3 members)', () => {
  let cluster: EtcdCluster;
  let store: FencedStore;
  let view: Etcd3;

  beforeAll(async () => {
    ({ cluster, store, view } = await startFaultFixture());
  });

  afterAll(() => stopFaultFixture({ cluster, store, view }));

  /** Grant times (ns) of every section so far, sorted. */
  const grantTimes = (workers: FaultWorker[]) =>
    workers
      .flatMap(w => w.all('section'))
      .map(m => BigInt(m.enter as string))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const sectionsSince = (workers: FaultWorker[], since: bigint) => grantTimes(workers).filter(t => t > since).length;
  /** The longest time without any grant across `at` (ns): from the last grant before it to the first after. */
  const gapAround = (workers: FaultWorker[], at: bigint) => {
    const times = grantTimes(workers);
    const before = times.filter(t => t <= at).at(-1);
    const after = times.find(t => t > at);
    return before === undefined || after === undefined ? NaN : msBetween(before, after);
  };

  it('leader SIGKILLed, then restarted with its data dir, during contention: 0 violations, no spurious loss', async () => {
    // Above the failover's cost to a session: an election of up to ~1.7 s here, on top of up to a
    // renewal interval since the last renewal (TTL - 10% margin). At 2 s, 7 of 16 runs lost a
    // session (safely, but a loss); at 3 s, 0 of 11 and later 1 of 8. See RELIABILITY.md.
    const TTL_S = 5;
    const prefix = 'leader/';
    const workers = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        startFaultWorker(`c${i}`, { endpoints: cluster.endpoints, store: store.url, ttl: TTL_S, prefix, requestTimeoutMs: 1500 }),
      ),
    );
    for (const w of workers)
      w.send({ cmd: 'contend', resource: 'busy', iterations: 100_000, holdMs: 5, waitTimeout: 10_000, deadlineMs: 60_000 });
    const enough = (since: bigint, count: number, what: string) =>
      waitFor(() => sectionsSince(workers, since) >= count, { timeoutMs: 20_000, intervalMs: 20, message: `${count} sections ${what}` });

    await enough(0n, 20, 'before the fault');
    const leader: EtcdMember = await cluster.leader();
    const killedAt = nowNs();
    await leader.kill('SIGKILL');
    await enough(killedAt, 20, 'after the leader died');
    const newLeader = await cluster.leader();
    const restartAt = nowNs();
    await leader.restart();
    const restartedAt = nowNs();
    await enough(restartedAt, 20, 'after the old leader rejoined');
    for (const w of workers) w.send({ cmd: 'stop-contending' });
    const done = await Promise.all(workers.map(w => w.next(m => m.type === 'contend-done', { timeoutMs: 20_000 })));

    const { sections, grants } = sectionsOf(workers, r => `${prefix}${r}/`);
    const failures = workers.flatMap(w => w.all('acquire-failed'));
    const failureKinds = countBy(failures.map(f => f.error as string));
    const losses = workers.flatMap(w => w.all('lost')).length;
    const lostSections = workers.flatMap(w => w.all('section')).filter(m => m.lost).length;
    // A waiter whose session is declared lost fails with LockLostError: a loss too.
    const sessionLossMessages = failures.filter(f => f.error === 'LockLostError').map(f => f.message);
    const sessionLosses = sessionLossMessages.length;
    const history = await checkHistory(view, grants);
    const inversions = fifoInversions(grants);
    const overlapping = overlaps(sections);
    const rejected = store.rejected('busy').length;
    const violations = history.violations.length + inversions + overlapping + rejected;
    const killWindow = gapAround(workers, killedAt);
    const restartWindow = gapAround(workers, restartAt);
    await Promise.all(workers.map(w => w.close()));
    await waitFor(async () => (await keysAt(view, prefix)).length === 0, { message: 'no keys left' });
    report({
      scenario: 'etcd leader SIGKILL, then restart, during contention',
      bound: '0 violations, no spurious loss, unavailability window reported',
      figures: {
        ttlS: TTL_S,
        workers: workers.length,
        grants: grants.length,
        violations,
        historyViolations: history.violations.length,
        historyCheckedAtSeenRevision: history.checkedAtSeen,
        overlaps: overlapping,
        fifoInversions: inversions,
        writesRejected: rejected,
        losses,
        sectionsMarkedLost: lostSections,
        waitersLostSession: sessionLosses,
        acquireFailures: failures.length,
        ...Object.fromEntries(Object.entries(failureKinds).map(([k, v]) => [`failed:${k}`, v])),
        leaderKilledNoGrantMs: killWindow,
        leaderRestartNoGrantMs: restartWindow,
        restartTookMs: msBetween(restartAt, restartedAt),
        leaderChanged: newLeader.name !== leader.name,
      },
      pass: violations === 0 && losses === 0 && sessionLosses === 0,
    });
    expect(history.violations).toEqual([]);
    expect(overlapping).toBe(0);
    expect(inversions).toBe(0);
    expect(rejected).toBe(0);
    expect(losses).toBe(0);
    expect(lostSections).toBe(0);
    expect(sessionLossMessages).toEqual([]);
    expect(done.every(m => (m.sections as number) > 0)).toBe(true);
    // Failures during the election are typed (etcd unavailable, or a wait timeout), never anything else.
    expect(Object.keys(failureKinds).filter(k => !['EtcdUnavailableError', 'LockTimeoutError'].includes(k))).toEqual([]);
    expect(newLeader.name).not.toBe(leader.name);
  });

  it('quorum lost for longer than the TTL, then restored: holders report the loss, nobody is granted meanwhile, no orphaned keys afterwards', async () => {
    const TTL_S = 2;
    const prefix = 'quorum/';
    const start = (id: string) =>
      startFaultWorker(id, { endpoints: cluster.endpoints, store: store.url, ttl: TTL_S, prefix, requestTimeoutMs: 1000 });
    const [h1, h2, waiter] = await Promise.all([start('h1'), start('h2'), start('waiter')]);
    const held1 = await h1.request({ cmd: 'acquire', resource: 'q1' }, ['acquired', 'acquire-failed']);
    const held2 = await h2.request({ cmd: 'acquire', resource: 'q2' }, ['acquired', 'acquire-failed']);
    expect([held1.type, held2.type]).toEqual(['acquired', 'acquired']);
    const waiting = waiter.send({ cmd: 'acquire', resource: 'q1', waitTimeout: 30_000 });
    await waitFor(async () => (await keysAt(view, `${prefix}q1/`)).length === 2, { message: 'the waiter queued' });
    const leasesBefore = await liveLeases(view);

    // Two of three members die: no quorum, no writes, no lease renewal, no expiry either.
    const leader = await cluster.leader();
    const follower = cluster.members.find(m => m !== leader)!;
    const killedAt = nowNs();
    await Promise.all([leader.kill('SIGKILL'), follower.kill('SIGKILL')]);
    const [lost1, lost2, waiterFailed] = await Promise.all([
      h1.next(m => m.type === 'lost', { timeoutMs: 10_000 }),
      h2.next(m => m.type === 'lost', { timeoutMs: 10_000 }),
      waiter.next(m => m.type === 'acquired' || m.type === 'acquire-failed', { from: waiting, timeoutMs: 10_000 }),
    ]);
    // The application lets go as it should: release after loss (etcd is unreachable, so this cannot delete anything).
    await Promise.all([
      h1.request({ cmd: 'release', resource: 'q1' }, ['released']),
      h2.request({ cmd: 'release', resource: 'q2' }, ['released']),
    ]);
    // Keep quorum lost for longer than the TTL.
    await waitFor(() => msBetween(killedAt, nowNs()) > TTL_S * 1000 + 500, { intervalMs: 20, message: 'TTL passed' });

    const restoring = nowNs();
    const healthy = Promise.all([leader.restart(), follower.restart()]).then(() => nowNs());
    healthy.catch(() => {}); // awaited below; this only keeps an early failure from counting as unhandled
    // Serving again once a member reports a leader. (A restarted etcd 3.4 member serves only
    // after publishing itself through Raft; if its first attempt preceded the election it retries
    // after its request timeout, 6 s here: so this takes 0.4 to 6 s.)
    const serving = await cluster.leader({ timeoutMs: 15_000 });
    const restoredAt = nowNs();
    // The lost sessions' keys and leases go (the new leader gives each lease a fresh TTL first).
    // Watched through the member that serves: a member that has not published itself yet accepts
    // connections but answers nothing, and a poll sent there would time etcd3, not etcd.
    const servingView = observer([serving.clientUrl]);
    try {
      await waitFor(
        async () =>
          (await keysAt(servingView, prefix)).length === 0 &&
          (await liveLeases(servingView)).filter(l => leasesBefore.includes(l)).length === 0,
        { timeoutMs: 15_000, intervalMs: 50, message: 'the lost sessions’ keys and leases are gone' },
      );
    } finally {
      servingView.close();
    }
    const orphansGoneMs = msBetween(restoredAt, nowNs());
    const healthyAt = await healthy;
    const outageMs = msBetween(killedAt, restoredAt);
    const grantedDuringOutage = [h1, h2, waiter]
      .flatMap(w => w.all('acquired'))
      .filter(m => BigInt(m.t as string) > killedAt && BigInt(m.t as string) < restoredAt).length;

    // Afterwards the lock works again for everyone (fresh leases).
    const again = await h1.request({ cmd: 'acquire', resource: 'q1', waitTimeout: 5000 }, ['acquired', 'acquire-failed']);
    const waitingAgain = waiter.send({ cmd: 'acquire', resource: 'q1', waitTimeout: 5000 });
    await h1.request({ cmd: 'release', resource: 'q1' }, ['released']);
    const waiterAgain = await waiter.next(m => m.type === 'acquired' || m.type === 'acquire-failed', {
      from: waitingAgain,
      timeoutMs: 10_000,
    });
    await waiter.request({ cmd: 'release', resource: 'q1' }, ['released']);
    await Promise.all([h1, h2, waiter].map(w => w.close()));
    const leftover = (await keysAt(view, prefix)).length;

    const detect = (m: Message) => msBetween(killedAt, m.t as string);
    const detectMax = Math.max(detect(lost1), detect(lost2));
    report({
      scenario: 'quorum lost > TTL, then restored',
      bound: 'holders report loss; afterwards no orphaned keys',
      figures: {
        ttlS: TTL_S,
        holdersLost: 2,
        lossDetectedMsMax: detectMax,
        waiterOutcome: `${waiterFailed.type}:${String(waiterFailed.error ?? '')}`,
        grantedDuringOutage,
        outageMs,
        servingAfterRestartMs: msBetween(restoring, restoredAt),
        membersHealthyAfterRestartMs: msBetween(restoring, healthyAt),
        orphansGoneAfterRestoreMs: orphansGoneMs,
        orphanedKeysLeft: leftover,
        worksAfterwards: again.type === 'acquired' && waiterAgain.type === 'acquired',
      },
      pass:
        detectMax <= TTL_S * 1000 &&
        grantedDuringOutage === 0 &&
        leftover === 0 &&
        orphansGoneMs <= TTL_S * 1000 + 2000 &&
        waiterFailed.type === 'acquire-failed',
    });
    // Each holder's session gives up by its own deadline: at most one TTL after the last renewal.
    expect(detectMax).toBeLessThanOrEqual(TTL_S * 1000);
    expect(lost1.reason).toMatch(/lost: the lease was not renewed in time/);
    expect(waiterFailed.type).toBe('acquire-failed');
    expect(['LockLostError', 'EtcdUnavailableError']).toContain(waiterFailed.error);
    expect(grantedDuringOutage).toBe(0);
    // Keys of lost sessions go with their leases: a TTL after the cluster is back, plus the election
    // timeout the new leader adds to every lease and etcd's 500 ms expiry check.
    expect(orphansGoneMs).toBeLessThanOrEqual(TTL_S * 1000 + 2000);
    expect(leftover).toBe(0);
    expect(again.type).toBe('acquired');
    expect(waiterAgain.type).toBe('acquired');
    expect(BigInt(waiterAgain.token as string)).toBeGreaterThan(BigInt(again.token as string));
  });
});

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}
