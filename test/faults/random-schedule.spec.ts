/**
 * Fault suite, the seeded random schedule: 3 worker processes run a few hundred mixed lock
 * operations (acquire, try, short timeout, abort, multi-key, nested withLock, an event-loop block,
 * locks held across operations) on a 3-member cluster they reach through one TCP proxy per member,
 * while faults drawn from the same seed hit the cluster, the network and the workers. Checked by
 * the suite's checkers: etcd's MVCC history, overlap of the sections the holders could vouch for,
 * FIFO by token, and the fenced store (no write refused while its writer still held the lock).
 *
 * The seed is printed; `FAULT_SEED=<seed>` replays the same operations and faults (and
 * `FAULT_CLASSES=a,b` narrows the faults to some classes); `SCHEDULE_DUMP=/tmp/x` writes every
 * worker message of a run to `/tmp/x-<prefix>.json`, to read a failure's timeline.
 */
import { jest } from '@jest/globals';
import type { Etcd3 } from 'etcd3';
import type { EtcdCluster } from '../support/etcd.js';
import type { FencedStore } from '../support/fenced-store.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';
import {
  checkHistory,
  fifoInversions,
  keysAt,
  msBetween,
  nowNs,
  overlaps,
  report,
  startFaultFixture,
  startFaultWorker,
  stopFaultFixture,
  type FaultWorker,
  type Grant,
  type Message,
  type Section,
} from './helpers.js';
import { countBy, generateSchedule, scheduleSeed, type Schedule } from './random-schedule.js';
import { HARNESS_FAULTS, faultClasses, runFaults, selectedFaultNames, type InjectedFault } from './schedule-faults.js';

jest.setTimeout(120_000);

const TTL_S = 2;
const WORKERS = 3;
const OPS_PER_WORKER = 80;
const RESOURCES = ['r0', 'r1', 'r2', 'r3'];
/** Workers start no new operation after this; faults start within FAULT_SPAN_MS. */
const OPS_DEADLINE_MS = 40_000;
const FAULT_SPAN_MS = 25_000;
/** Outcomes an operation may have under faults; anything else is a defect. */
const TYPED_OUTCOMES = ['held', 'busy', 'timeout', 'aborted', 'lost', 'unavailable', 'nothing-held', 'planted'];

interface Run {
  workers: FaultWorker[];
  /** When the operations were sent (ns); fault offsets count from about then. */
  started: bigint;
  injected: InjectedFault[];
  elapsedMs: number;
}

interface Verdict {
  violations: string[];
  /** Liveness: waiters that timed out while nobody could have held the lock (see `stalls`). */
  stalls: Stall[];
  figures: Record<string, number>;
  outcomes: Record<string, number>;
  unexpected: Message[];
}

interface Stall {
  resource: string;
  /** The stretch, as offsets from the start of the operations (ms). */
  fromMs: number;
  toMs: number;
  /** Waits that timed out on the resource across the stretch. */
  waitersTimedOut: number;
}

/**
 * Liveness: stretches in which waiters kept timing out on a resource that had no vouched holder,
 * for longer than a silent holder can block it (its lease runs up to a TTL after its last renewal,
 * a leader change gives it a fresh TTL, plus etcd's 500 ms expiry check and the wake-up). A
 * longer one means something that is no holder blocked the queue (an orphaned key), or the
 * waiters were never woken.
 */
const STALL_ALLOWANCE_MS = 2 * TTL_S * 1000 + 1000;
const STALL_BUCKET_MS = 10;

function stalls(ops: Message[], sections: Section[], started: bigint): Stall[] {
  const bucket = (t: bigint) => Math.max(0, Math.floor(msBetween(started, t) / STALL_BUCKET_MS));
  const timedOut = ops.flatMap(op => {
    const resource = /waiting for lock "([^"]+)"/.exec(String(op.message ?? ''))?.[1];
    if (op.outcome !== 'timeout' || resource === undefined || (op.ms as number) < 1000) return [];
    const end = BigInt(op.t as string);
    return [{ resource, from: bucket(end - BigInt(op.ms as number) * 1_000_000n), to: bucket(end) }];
  });
  const found: Stall[] = [];
  for (const resource of new Set(timedOut.map(w => w.resource))) {
    const waits = timedOut.filter(w => w.resource === resource);
    const size = Math.max(...waits.map(w => w.to)) + 1;
    const waited = new Uint8Array(size);
    for (const w of waits) waited.fill(1, w.from, w.to + 1);
    for (const s of sections.filter(s => s.resource === resource)) waited.fill(0, bucket(s.enter), Math.min(size, bucket(s.exit) + 1));
    for (let i = 0; i < size;) {
      if (!waited[i]) {
        i++;
        continue;
      }
      let j = i;
      while (j < size && waited[j]) j++;
      if ((j - i) * STALL_BUCKET_MS > STALL_ALLOWANCE_MS) {
        const [fromMs, toMs] = [i * STALL_BUCKET_MS, j * STALL_BUCKET_MS];
        const waitersTimedOut = waits.filter(w => w.to * STALL_BUCKET_MS > fromMs && w.from * STALL_BUCKET_MS < toMs).length;
        found.push({ resource, fromMs, toMs, waitersTimedOut });
      }
      i = j;
    }
  }
  return found;
}

describe('fault suite: seeded random schedule (3 processes, 3 members)', () => {
  let cluster: EtcdCluster;
  let store: FencedStore;
  let view: Etcd3;
  let proxies: TcpProxy[] = [];

  beforeAll(async () => {
    ({ cluster, store, view } = await startFaultFixture());
    proxies = await Promise.all(cluster.endpoints.map(url => startTcpProxy(url)));
  });

  afterAll(async () => {
    await Promise.all(proxies.map(p => p.close()));
    await stopFaultFixture({ cluster, store, view });
  });

  /** Runs a schedule: workers through the proxies (each with its own first member), faults meanwhile. */
  async function run(schedule: Schedule, prefix: string, options: { faults: string[]; brokenWorkers?: number[] }): Promise<Run> {
    const workers = await Promise.all(
      Array.from({ length: WORKERS }, (_, i) =>
        startFaultWorker(`s${i}`, {
          endpoints: proxies.map((_, k) => proxies[(i + k) % proxies.length]!.url),
          store: store.url,
          ttl: TTL_S,
          prefix,
          requestTimeoutMs: 1000,
          ...(options.brokenWorkers?.includes(i) ? { broken: 'release-early' as const } : {}),
        }),
      ),
    );
    const started = nowNs();
    const done = Promise.all(
      workers.map((w, i) => {
        w.send({ cmd: 'schedule', ops: schedule.ops[i], deadlineMs: OPS_DEADLINE_MS });
        // Every wait of an operation is bounded: a worker not done well after the deadline is wedged.
        return w.next(m => m.type === 'schedule-done', { timeoutMs: OPS_DEADLINE_MS + 30_000 });
      }),
    );
    const injected = await runFaults(schedule.faults, faultClasses(options.faults), { cluster, proxies, workers }, done);
    await done;
    return { workers, started, injected, elapsedMs: msBetween(started, nowNs()) };
  }

  /** The checkers over a run's messages and etcd's history. */
  async function check({ workers, started }: Run, prefix: string, seed: number): Promise<Verdict> {
    const messages: Message[] = workers.flatMap(w => w.messages.map(m => ({ ...m, worker: w.id })));
    const of = (type: string) => messages.filter(m => m.type === type);
    const ops = of('op');
    if (process.env.SCHEDULE_DUMP)
      (await import('node:fs')).writeFileSync(`${process.env.SCHEDULE_DUMP}-${prefix.replace(/\W/g, '')}.json`, JSON.stringify(messages));
    const grantOf = (m: Message, at: string): Grant => ({
      resource: m.resource as string,
      prefix: `${prefix}${m.resource as string}/`,
      key: m.key as string,
      token: BigInt(m.token as string),
      at: BigInt(at),
      ...(m.seenRevision ? { seenRevision: BigInt(m.seenRevision as string) } : {}),
      worker: m.worker as string,
    });
    const held = of('section');
    const sections: Section[] = held.map(m => ({
      resource: m.resource as string,
      token: BigInt(m.token as string),
      enter: BigInt(m.enter as string),
      exit: BigInt(m.exit as string),
    }));
    const grants = held.map(m => grantOf(m, m.enter as string));
    // Grants already lost at their first check (their holder was paused, or its lease lapsed
    // meanwhile): the token must still be a create revision; they vouch for no section.
    const unheld = of('grant-unheld').map(m => grantOf(m, m.t as string));
    const history = await checkHistory(view, [...grants, ...unheld]);
    const inversions = fifoInversions(grants);
    const overlapping = overlaps(sections);
    const writes = held.flatMap(m => m.writes as Array<{ accepted: boolean; heldAfter: boolean }>);
    const refusedWhileHeld = writes.filter(w => !w.accepted && w.heldAfter).length;
    const unexpected = ops.filter(m => !TYPED_OUTCOMES.includes(m.outcome as string));
    const stalled = stalls(ops, sections, started);
    const violations = [
      ...history.violations,
      ...(inversions > 0 ? [`${inversions} FIFO inversions`] : []),
      ...(overlapping > 0 ? [`${overlapping} overlapping sections`] : []),
      ...(refusedWhileHeld > 0 ? [`${refusedWhileHeld} writes refused by the fenced store while their writer still held the lock`] : []),
    ].map(v => `seed ${seed}: ${v}`);
    return {
      violations,
      unexpected,
      outcomes: countBy(ops, m => m.outcome as string),
      figures: {
        ops: ops.length,
        sections: sections.length,
        grantsLostAtFirstCheck: unheld.length,
        historyViolations: history.violations.length,
        checkedAtSeenRevision: history.checkedAtSeen,
        fifoInversions: inversions,
        overlaps: overlapping,
        writes: writes.length,
        writesRefused: writes.filter(w => !w.accepted).length,
        writesRefusedWhileHeld: refusedWhileHeld,
        withLockResolvedAfterLoss: ops.filter(m => m.resolvedAfterLoss).length,
        lockSetSignalStale: ops.filter(m => m.lockSetSignalStale).length,
        maxOpMs: Math.max(0, ...ops.map(m => m.ms as number)),
        stalls: stalled.length,
        longestStallMs: Math.max(0, ...stalled.map(s => s.toMs - s.fromMs)),
      },
      stalls: stalled,
    };
  }

  /** Closes the workers (revoking their leases) and waits for their keys to go. */
  async function finish(workers: FaultWorker[], prefix: string): Promise<number> {
    await Promise.all(workers.map(w => w.close()));
    // A worker whose session was lost cannot revoke it: its keys go with the lease (≤ TTL + etcd's 500 ms check).
    await waitFor(async () => (await keysAt(view, prefix)).length === 0, {
      timeoutMs: TTL_S * 1000 + 3000,
      message: `no keys left under ${prefix}`,
    }).catch(() => undefined);
    return (await keysAt(view, prefix)).length;
  }

  it(`${WORKERS} processes x ${OPS_PER_WORKER} mixed operations under seeded faults: 0 violations, every operation ends typed`, async () => {
    const seed = scheduleSeed();
    const faultNames = selectedFaultNames(HARNESS_FAULTS);
    const schedule = generateSchedule({
      seed,
      workers: WORKERS,
      opsPerWorker: OPS_PER_WORKER,
      resources: RESOURCES,
      ops: { waitTimeoutMs: 3000 },
      faults: { classes: faultClasses(faultNames), spanMs: FAULT_SPAN_MS, members: cluster.members.length },
    });
    console.log(
      `[random-schedule] seed ${seed} (replay: FAULT_SEED=${seed}); faults planned: ${JSON.stringify(countBy(schedule.faults, f => f.name))}`,
    );
    const prefix = 'sched/';
    // A wait of 3 s outlasts a silent holder (TTL 2 s + etcd's expiry check) yet keeps a blocked
    // resource from eating the run's time budget.
    const outcome = await run(schedule, prefix, { faults: faultNames });
    const { workers, injected, elapsedMs } = outcome;
    const verdict = await check(outcome, prefix, seed);
    const leftover = await finish(workers, prefix);
    const ran = verdict.figures.ops!;
    report({
      scenario: `seeded random schedule: ${WORKERS} processes x ${OPS_PER_WORKER} ops, faults ${faultNames.join('/')}`,
      bound: '0 history violations, 0 overlaps, 0 FIFO inversions, 0 writes refused while held; every op typed; no stall; 0 keys left',
      figures: {
        seed,
        ...verdict.figures,
        ...Object.fromEntries(Object.entries(verdict.outcomes).map(([k, v]) => [`outcome:${k}`, v])),
        faultsInjected: injected.length,
        ...Object.fromEntries(Object.entries(countBy(injected, f => f.name)).map(([k, v]) => [`fault:${k}`, v])),
        unexpectedOutcomes: verdict.unexpected.length,
        leftoverKeys: leftover,
        elapsedMs,
      },
      pass:
        verdict.violations.length === 0 && verdict.unexpected.length === 0 && verdict.stalls.length === 0 && ran >= 200 && leftover === 0,
    });
    for (const stall of verdict.stalls)
      console.log(`[random-schedule] seed ${seed}: waiters timed out on a free lock: ${JSON.stringify(stall)}`);
    for (const fault of injected)
      console.log(
        `[random-schedule] ${fault.name}#${fault.target} ${JSON.stringify(fault.options)} ${Math.round(fault.atMs)}..${Math.round(fault.healedAtMs)} ms`,
      );

    expect({ seed, violations: verdict.violations }).toEqual({ seed, violations: [] });
    expect({ seed, unexpected: verdict.unexpected }).toEqual({ seed, unexpected: [] });
    // Liveness. Fails while issue 14 point 4 is open (RELIABILITY.md finding 4): with seed
    // 2501403234 an acquisition failed with DEADLINE_EXCEEDED while its member was SIGSTOPped;
    // its put committed when the member resumed, after the cleanup delete had gone through
    // another member, and that key (live lease, no handle) blocked "r2" for 9.8 s: every waiter
    // timed out until its worker's lease lapsed. Seen in 1 of 5 runs; replays of the seed differ.
    expect({ seed, stalls: verdict.stalls }).toEqual({ seed, stalls: [] });
    expect(ran).toBeGreaterThanOrEqual(200);
    expect(injected.length).toBeGreaterThan(0);
    expect(leftover).toBe(0);
  });

  it('the checker catches a holder that gives its lock back at once (one broken worker of three)', async () => {
    const seed = scheduleSeed();
    // Plain acquisitions of one resource, sections of up to 40 ms, no faults: only the broken
    // worker can make two sections meet.
    const schedule = generateSchedule({
      seed,
      workers: WORKERS,
      opsPerWorker: 15,
      resources: ['r0'],
      ops: { weights: { acquire: 1, try: 0, timeout: 0, abort: 0, multi: 0, nested: 0, block: 0, hold: 0 }, maxHoldMs: 40 },
    });
    const prefix = 'sched-broken/';
    const broken = await run(schedule, prefix, { faults: [], brokenWorkers: [0] });
    const verdict = await check(broken, prefix, seed);
    await finish(broken.workers, prefix);
    console.log(`[random-schedule] broken worker, seed ${seed}: ${JSON.stringify(verdict.figures)}`);
    expect(verdict.figures.overlaps).toBeGreaterThan(0);
    expect(verdict.violations.length).toBeGreaterThan(0);
  });

  it('the liveness check catches waiters blocked by a key that no holder owns (an orphan planted on a live lease)', async () => {
    // Seven waits of 1.5 s per worker: even if each worker's first wait won the lock before the
    // orphan was planted, the other six span 9 s, past the 5 s allowance.
    const waits = Array.from({ length: 7 }, () => ({ op: 'acquire' as const, resource: 'r0', waitTimeoutMs: 1500, holdMs: 0 }));
    const schedule: Schedule = { seed: 0, ops: [[{ op: 'orphan', resource: 'r0' }], waits, waits], faults: [] };
    const prefix = 'sched-orphan/';
    const blocked = await run(schedule, prefix, { faults: [] });
    const verdict = await check(blocked, prefix, 0);
    await finish(blocked.workers, prefix);
    console.log(`[random-schedule] orphan planted: ${JSON.stringify(verdict.stalls)} ${JSON.stringify(verdict.outcomes)}`);
    expect(verdict.stalls).toEqual([expect.objectContaining({ resource: 'r0' })]);
    expect(verdict.violations).toEqual([]);
  });
});
