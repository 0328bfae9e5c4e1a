/**
 * The "schedule" command of fault-worker: runs one worker's operations of the seeded random
 * schedule (test/faults/random-schedule.ts) one after the other and reports, per operation, its
 * outcome, and per lock it got, the critical section as the holder could vouch for it.
 *
 * A section is [enter, exit] where `enter` is taken right after the grant and `exit` is the last
 * moment the holder CHECKED that it still held the lock (every handle's `signal.aborted`, which
 * re-reads the lease deadline): that is what code heeding the signal relies on. The time between
 * a check and the write it guards is the fenced store's to protect: each write records whether
 * the store accepted it and whether the lock still held right after; a refused write while it
 * still held means someone with a higher token wrote meanwhile: two holders.
 *
 * Messages (besides fault-worker's own):
 *   {"type":"op",n,op,outcome,error?,message?,ms,t,resolvedAfterLoss?,lockSetSignalStale?}
 *       outcome: held | busy | timeout | aborted | lost | unavailable | nothing-held (a release
 *       whose hold failed) | planted (an orphan) | unexpected (any other error: a defect)
 *   {"type":"section",op,resource,token,key,enter,exit,seenRevision,writes:[{accepted,heldAfter}]}
 *   {"type":"grant-unheld",op,resource,token,key,t}    a grant already lost at its first check
 *   {"type":"schedule-done",ran,skipped,ms}
 */
import { EtcdLockClient, LockHandle, LockSet } from '../../lib/core/index.js';
import { resourcePrefix } from '../../lib/core/keys.js';
import type { LockService } from '../../lib/nest/lock.service.js';
import type { ScheduleOp } from '../faults/random-schedule.js';
import type { FaultMessageBody, OpOutcome } from './fault-protocol.js';

export interface ScheduleContext {
  client: EtcdLockClient;
  service: LockService;
  emit(line: FaultMessageBody): void;
  now(): string;
  storeWrite(resource: string, token: bigint, note: string): Promise<boolean>;
  seenRevision(key: string): Promise<string | undefined>;
  /**
   * A deliberately broken holder for the checker's negative test: `release-early` gives every
   * lock back right after the grant and then works as if it still held it.
   */
  broken?: 'release-early';
}

/** The reason given to an abort op's signal, to tell "aborted" from every other failure. */
class ScheduleAbort extends Error {
  override name = 'ScheduleAbort';
}

const delay = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // the event loop is blocked on purpose
  }
}

const handlesOf = (lock: LockHandle | LockSet) => (lock instanceof LockSet ? [...lock.handles] : [lock]);

/**
 * Open sections are checked every CHECK_EVERY_MS as well, as code holding a lock across other
 * work would heed its signal: a section held across a wait (a `hold`, the outer lock of `nested`)
 * then vouches up to its loss, not only up to its last write.
 */
const openSections = new Set<Section>();
const CHECK_EVERY_MS = 100;
setInterval(() => openSections.forEach(s => s.check()), CHECK_EVERY_MS).unref();

/** A critical section as its holder vouches for it: see the file comment. */
class Section {
  private lastHeld: string;
  private readonly writes: Array<{ resource: string; accepted: boolean; heldAfter: boolean }> = [];
  private seen: Array<string | undefined> = [];
  held = true;

  constructor(
    private readonly ctx: ScheduleContext,
    private readonly op: ScheduleOp['op'],
    readonly handles: LockHandle[],
    private readonly enter: string,
  ) {
    this.lastHeld = enter;
  }

  /** The time is taken before the check: if the lock held then, it held at that time. */
  check(): boolean {
    const t = this.ctx.now();
    if (this.held && this.handles.every(h => !h.signal.aborted)) this.lastHeld = t;
    else this.held = false;
    return this.held;
  }

  async open(): Promise<boolean> {
    openSections.add(this);
    if (!this.check()) {
      for (const h of this.handles) {
        this.ctx.emit({
          type: 'grant-unheld',
          op: this.op,
          resource: h.resource,
          token: h.fencingToken.toString(),
          key: h.key,
          t: this.enter,
        });
      }
      return false;
    }
    for (const h of this.handles) this.seen.push(await this.ctx.seenRevision(h.key));
    if (this.ctx.broken === 'release-early') await Promise.all(this.handles.map(h => h.release()));
    await this.write('enter');
    return this.held;
  }

  async write(note: string): Promise<void> {
    for (const h of this.handles) {
      if (!this.check()) return;
      const accepted = await this.ctx.storeWrite(h.resource, h.fencingToken, note);
      this.writes.push({ resource: h.resource, accepted, heldAfter: this.check() });
    }
  }

  /** Writes "exit", checks a last time, reports the section of every handle. */
  async close(): Promise<void> {
    if (this.held) await this.write('exit');
    this.check();
    openSections.delete(this);
    this.handles.forEach((h, i) =>
      this.ctx.emit({
        type: 'section',
        op: this.op,
        resource: h.resource,
        token: h.fencingToken.toString(),
        key: h.key,
        enter: this.enter,
        exit: this.lastHeld,
        seenRevision: this.seen[i],
        writes: this.writes.filter(w => w.resource === h.resource).map(({ accepted, heldAfter }) => ({ accepted, heldAfter })),
      }),
    );
  }
}

/** Runs `work` as a section of `lock`; false when the lock was lost before the section ended. */
async function section(
  ctx: ScheduleContext,
  op: ScheduleOp['op'],
  lock: LockHandle | LockSet,
  work: (s: Section) => Promise<void> | void,
): Promise<boolean> {
  const s = new Section(ctx, op, handlesOf(lock), ctx.now());
  if (await s.open()) await work(s);
  await s.close();
  return s.held;
}

type Outcome = OpOutcome;

function failure(err: unknown): Outcome {
  const name = err instanceof Error ? err.name : typeof err;
  const message = err instanceof Error ? err.message : String(err);
  const outcome =
    {
      ScheduleAbort: 'aborted',
      LockTimeoutError: 'timeout',
      LockBusyError: 'busy',
      LockLostError: 'lost',
      EtcdUnavailableError: 'unavailable',
    }[name] ?? 'unexpected';
  return { outcome, error: name, message };
}

const heldOrLost = (held: boolean): Outcome => ({ outcome: held ? 'held' : 'lost' });

/** Sections of a `hold` op still open, by resource (closed by the matching `release`). */
const holding = new Map<string, Section>();

async function runOp(ctx: ScheduleContext, op: ScheduleOp): Promise<Outcome> {
  const { client, service } = ctx;
  const hold = (holdMs: number) => async () => {
    await delay(holdMs);
  };
  switch (op.op) {
    case 'acquire':
    case 'timeout': {
      const lock = await client.acquire(op.resource, { waitTimeout: op.waitTimeoutMs });
      try {
        return heldOrLost(await section(ctx, op.op, lock, hold(op.holdMs)));
      } finally {
        await lock.release();
      }
    }
    case 'try': {
      const lock = await client.tryAcquire(op.resource);
      if (!lock) return { outcome: 'busy' };
      try {
        return heldOrLost(await section(ctx, op.op, lock, hold(op.holdMs)));
      } finally {
        await lock.release();
      }
    }
    case 'abort': {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new ScheduleAbort(`gave up after ${op.abortAfterMs} ms`)), op.abortAfterMs);
      let lock: LockHandle;
      try {
        lock = await client.acquire(op.resource, { signal: controller.signal, waitTimeout: 10_000 });
      } finally {
        clearTimeout(timer);
      }
      try {
        return heldOrLost(await section(ctx, op.op, lock, hold(op.holdMs)));
      } finally {
        await lock.release();
      }
    }
    case 'multi': {
      const set = await client.acquire(op.resources, { waitTimeout: op.waitTimeoutMs });
      try {
        const held = await section(ctx, op.op, set, hold(op.holdMs));
        // LockSet.signal is read as a plain AbortSignal: does it say what its handles say?
        return { ...heldOrLost(held), lockSetSignalStale: !held && !set.signal.aborted };
      } finally {
        await set.release();
      }
    }
    case 'nested': {
      let held = true;
      let innerHeld = true;
      await service.withLock(
        op.outer,
        async outer => {
          held = await section(ctx, op.op, outer, async () => {
            await service.withLock(
              [op.outer, op.inner],
              async set => {
                // The outer handle is borrowed (its section is the outer one): a section for the inner only.
                innerHeld = await section(
                  ctx,
                  op.op,
                  set.handles.find(h => h.resource === op.inner)!,
                  hold(op.holdMs),
                );
              },
              { waitTimeout: op.waitTimeoutMs },
            );
          });
        },
        { waitTimeout: op.waitTimeoutMs },
      );
      return { ...heldOrLost(held && innerHeld), resolvedAfterLoss: !(held && innerHeld) };
    }
    case 'block': {
      let held = true;
      await client.withLock(
        op.resource,
        async lock => {
          held = await section(ctx, op.op, lock, () => spin(op.blockMs));
        },
        { waitTimeout: op.waitTimeoutMs },
      );
      // withLock resolved: it vouches that the lock held throughout.
      return { ...heldOrLost(held), resolvedAfterLoss: !held };
    }
    case 'hold': {
      const lock = await client.acquire(op.resource, { waitTimeout: op.waitTimeoutMs });
      const s = new Section(ctx, op.op, [lock], ctx.now());
      holding.set(op.resource, s);
      if (!(await s.open())) return { outcome: 'lost' };
      return { outcome: 'held' };
    }
    case 'orphan': {
      const leaseHex = client.status().leaseId!;
      const key = `${resourcePrefix(client.options.prefix, op.resource)}${leaseHex}_orphan`;
      await client.etcd
        .put(key)
        .value('')
        .lease(BigInt(`0x${leaseHex}`).toString());
      return { outcome: 'planted' };
    }
    case 'release': {
      const s = holding.get(op.resource);
      if (!s) return { outcome: 'nothing-held' }; // its hold did not get the lock
      holding.delete(op.resource);
      try {
        await s.close();
        return heldOrLost(s.held);
      } finally {
        await Promise.all(s.handles.map(h => h.release()));
      }
    }
  }
}

/** Runs the operations in order until they are done or `deadlineMs` has passed. */
export async function runSchedule(ctx: ScheduleContext, ops: ScheduleOp[], deadlineMs: number): Promise<void> {
  const started = performance.now();
  let ran = 0;
  for (const [n, op] of ops.entries()) {
    // A release still runs after the deadline: nothing is left held.
    if (performance.now() - started > deadlineMs && op.op !== 'release') continue;
    const opStarted = performance.now();
    let outcome: Outcome;
    try {
      outcome = await runOp(ctx, op);
    } catch (err) {
      outcome = failure(err);
    }
    ran++;
    ctx.emit({ type: 'op', n, op: op.op, ...outcome, ms: Math.round(performance.now() - opStarted), t: ctx.now() });
  }
  ctx.emit({ type: 'schedule-done', ran, skipped: ops.length - ran, ms: Math.round(performance.now() - started) });
}
