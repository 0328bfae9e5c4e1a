import { EtcdLeaseInvalidError, type Etcd3 } from 'etcd3';
import { setTimeout as sleep } from 'node:timers/promises';
import { Acquisition, type QueuedAcquisition } from './acquisition.js';
import { backoffPauses } from './backoff.js';
import type { DeletionWatch, WatchFor, WatchWake } from './deletion-watch.js';
import { EtcdUnavailableError, LockBusyError, LockClientClosedError, LockLostError, LockModeMismatchError } from './errors.js';
import { toLockError } from './etcd-errors.js';
import { LockHandle } from './handle.js';
import { KeyCleanup } from './key-cleanup.js';
import { idleWatchKey, resourcePrefix, waiterKey } from './keys.js';
import { modeOfKey, modeSuffix, sameMode } from './lock-mode.js';
import { LeaseKeysAudit } from './lease-keys-audit.js';
import type { AcquireOneOptions } from './lock-client.js';
import type { LockEvents } from './lock-events.js';
import type { LockLogger } from './logger.js';
import { entryValue, type EnqueueGuard, type Enqueued, type QueueStore, type QueueView } from './queue-store.js';
import { aheadReads, rewritesOnEntry, turnOf, type WaitOn } from './queue-turn.js';
import type { Session } from './session.js';
import { WaitScope } from './wait-scope.js';
import { WatchChannel } from './watch-channel.js';

/** Pause before re-arming a watch that etcd refused, so a persistent refusal cannot spin. */
const WATCH_RETRY_MS = 50;

/** Pauses between the re-reads of a queue that etcd could not answer. */
const READ_RETRY = { firstMs: WATCH_RETRY_MS, maxMs: 1000 };

/** How long a failed acquisition waits for its key's deletion before rejecting anyway. */
const CLEANUP_GRACE_MS = 250;

/**
 * When one stream failure wakes many waiters, each re-reads after a random pause of up to this
 * much per waiter woken (at most {@link MAX_SPREAD_MS}), so that 10,000 waiters cost 10,000 reads
 * spread over a second rather than 10,000 at once.
 */
const SPREAD_PER_WAITER_MS = 0.1;
const MAX_SPREAD_MS = 1000;

/** What ended one wait for the predecessor's deletion. */
type Wake = WatchWake | 'recheck' | { armedAt: string };

/** The watch each kind of wait of queue-turn.ts needs. */
const WATCH_FOR: Record<WaitOn['on'], WatchFor> = { deletion: 'deletion', change: 'change', holders: 'prefix-deletions' };

/**
 * etcd's `concurrency.Mutex` algorithm, made exact and fast:
 * - each acquisition puts its own key under `<prefix><resource>/` on the session lease; the key
 *   with the lowest create revision holds the lock, the others wait in create-revision order;
 * - a waiter watches only the key right ahead of it (no thundering herd), from "now", and
 *   re-reads the queue by create revision after every wake-up;
 * - the re-read also checks the waiter's own key, so a waiter whose lease died while it waited is
 *   never granted the lock (etcd #11456);
 * - keys carry a per-acquisition sequence number, so concurrent acquisitions on one lease queue
 *   like any others instead of all being "owners" as in Go.
 *
 * The same queue serves shared holders and semaphores: only the rule of queue-turn.ts (may this
 * key enter, given the keys ahead of it, and if not, what does it wait for) differs by mode.
 */
export class FairMutex {
  private sequence = 0;
  private readonly cleanup: KeyCleanup;
  private readonly audits = new WeakMap<Session, LeaseKeysAudit>();
  private readonly channel: WatchChannel;
  /** Waiters woken by the last stream failure, and when it struck (for the re-read spread). */
  private burst = { at: -Infinity, size: 0 };
  private closing = false;

  constructor(
    private readonly client: Etcd3,
    private readonly store: QueueStore,
    private readonly keyPrefix: string,
    private readonly logger: LockLogger,
    private readonly events: LockEvents,
  ) {
    this.cleanup = new KeyCleanup(store, logger);
    // A create normally takes ~1 ms, but thousands of waiters queueing at once can keep this
    // process busy for a second or more: the request timeout bounds it, as it bounds any call.
    this.channel = new WatchChannel(client, idleWatchKey(keyPrefix), store.requestTimeoutMs, logger);
  }

  async acquire(session: Session, resource: string, options: AcquireOneOptions): Promise<LockHandle> {
    const prefix = resourcePrefix(this.keyPrefix, resource);
    const key = waiterKey(prefix, session.leaseHex, ++this.sequence, modeSuffix(options.mode));
    const scope = new WaitScope(resource, options, session);
    const acquisition = new Acquisition(session, resource, prefix, key, scope, options.tryOnly, options.mode, entryValue());
    const audit = this.auditOf(session);
    const acquisitionEnded = audit.begin(key);
    try {
      scope.throwIfAborted();
      const enqueued = await this.enqueue(acquisition);
      const queued = acquisition.queued(enqueued.createRevision);
      const revision = queued.createRevision;
      const view =
        enqueued.kind === 'queued'
          ? { revision: enqueued.revision, ownExists: true, ahead: enqueued.ahead }
          : await scope.race(this.store.view(prefix, key, revision, aheadReads(options.mode)));
      this.channel.noteRevision(view.revision);
      await this.waitForTurn(queued, view);
      if (!session.alive) throw new LockLostError(resource, 'the session expired as the lock was granted');
      const handle = new LockHandle(
        resource,
        key,
        BigInt(revision),
        session,
        held => {
          audit.delete(held);
          return this.cleanup.deleteKey(session, key, revision);
        },
        this.events,
        options.mode,
      );
      audit.add(handle);
      return handle;
    } catch (err) {
      const failure = this.failure(scope, err, resource);
      if (err instanceof EtcdLeaseInvalidError) {
        // etcd no longer knows our lease: every key on it is gone. The next acquisition opens another.
        session.lose('etcd reports that the lease no longer exists', err);
      }
      // A lost or closed session's keys go with its lease (revoked or expiring): one delete per
      // waiter would only repeat the revoke, N times over when N waiters lose it at once.
      if (session.alive) {
        const cleanup = this.cleanup.abandon(acquisition);
        // Remove our key before rejecting, so the caller never finds its own failed attempt still
        // queued, but only within a short grace: with etcd unreachable the delete could take a
        // whole request timeout, and the rejection must not come that much later than the wait timeout.
        await Promise.race([cleanup, sleep(CLEANUP_GRACE_MS, undefined, { ref: false })]);
      }
      throw failure;
    } finally {
      scope.dispose();
      acquisitionEnded();
    }
  }

  /**
   * Puts our key into the queue. A semaphore's key goes in only while the queue is empty or its
   * oldest key (which every key present agrees with) has our number of permits, so that all the
   * keys of a semaphore agree on it; a different number is refused before anything is written.
   */
  private async enqueue(acquisition: Acquisition): Promise<Exclude<Enqueued, { kind: 'refused' }>> {
    const { mode, tryOnly, prefix, key, session, scope, resource } = acquisition;
    const reads = aheadReads(mode);
    let guard: EnqueueGuard = mode.kind === 'semaphore' || (tryOnly && mode.kind === 'exclusive') ? 'empty' : 'absent';
    for (;;) {
      acquisition.put = this.store.enqueue(prefix, key, acquisition.value, session.leaseId, guard, reads);
      const enqueued = await scope.race(acquisition.put);
      if (enqueued.kind !== 'refused') return enqueued;
      if (mode.kind !== 'semaphore') throw new LockBusyError(resource);
      const { oldest } = enqueued;
      if (!oldest) {
        guard = 'empty'; // emptied since
        continue;
      }
      const found = modeOfKey(oldest.key.toString());
      if (!sameMode(found, mode)) throw new LockModeMismatchError(resource, mode, found);
      guard = { oldest };
    }
  }

  /** The error an acquisition that failed with `err` rejects with. */
  private failure(scope: WaitScope, err: unknown, resource: string): unknown {
    // Cut off by close(): whatever ended the wait (the session's end, a refused request), the cause is the shutdown.
    if (this.closing && !(scope.aborted && !(scope.reason instanceof LockLostError))) return new LockClientClosedError();
    if (scope.aborted) return scope.reason;
    return toLockError(err, `acquiring lock "${resource}"`, resource);
  }

  private auditOf(session: Session): LeaseKeysAudit {
    let audit = this.audits.get(session);
    if (!audit) {
      audit = new LeaseKeysAudit(this.client, session, this.store, this.keyPrefix, this.logger);
      this.audits.set(session, audit);
    }
    return audit;
  }

  /**
   * Starts shutting down: waiters cut off from now on reject with LockClientClosedError, and the
   * idle watch goes without waiting for etcd to confirm its cancel (a stalled stream never does).
   */
  close(): void {
    this.closing = true;
    this.channel.close();
  }

  /** Settles once every background key deletion has finished. */
  settled(): Promise<void> {
    return this.cleanup.settled();
  }

  /**
   * The queue core: waits until the mode's rule lets our key enter, re-reading the queue on every
   * wake-up. A semaphore holder that waited then rewrites its key, which wakes the waiter behind.
   */
  private async waitForTurn(acquisition: QueuedAcquisition, view: QueueView): Promise<void> {
    const { scope, resource, tryOnly, mode, prefix, key } = acquisition;
    let watch: DeletionWatch | undefined;
    let watched: WaitOn | undefined;
    let waited = false;
    /** When this waiter last knew its view current (read it, or had its watch's stream vouched for). */
    let checkedAt = performance.now();
    try {
      for (;;) {
        if (!view.ownExists) {
          throw new LockLostError(resource, 'our queue key vanished while waiting (lease expired or key deleted)');
        }
        const turn = turnOf(resource, mode, prefix, view.ahead);
        if (turn.enter) {
          if (waited && rewritesOnEntry(mode)) await this.announceEntry(acquisition);
          return;
        }
        if (tryOnly) throw new LockBusyError(resource);
        if (!waited) this.events.emit({ type: 'waiting', resource, key });
        waited = true;
        const wait = turn.wait;
        let wake: Wake;
        if (watch && watched && sameWait(watched, wait)) {
          wake = await this.nextWake(acquisition, watch, false);
        } else {
          watch?.cancel();
          watch = this.channel.watchDeletion(wait.key, WATCH_FOR[wait.on]);
          watch.onDisconnected(() => this.noteDisconnect());
          watched = wait;
          wake = await this.nextWake(acquisition, watch, true);
        }
        if (wake === 'recheck') {
          // A create (ours or one ahead of it) unanswered past the arm bound: the stream is stuck.
          if (this.channel.stalled()) {
            wake = 'refused';
          } else if (watch.progress === 'armed') {
            const since = checkedAt;
            checkedAt = performance.now();
            // The stream answers and is up to date: our armed watch would have seen the deletion.
            if (await scope.race(this.channel.vouch(since))) continue;
          }
        }
        if (typeof wake === 'object') {
          // Armed at the revision we last read: nothing changed in between, the view holds.
          if (wake.armedAt === view.revision) continue;
        } else if (wake === 'refused') {
          this.logger.debug?.(`watch on ${wait.key} refused or unconfirmed; rebuilding the stream and re-reading`);
          this.channel.rebuild(watch.generation, `a watch create was refused or not confirmed within ${this.channel.armTimeoutMs} ms`);
          watch.cancel();
          watch = undefined;
          await scope.race(sleep(WATCH_RETRY_MS));
        } else if (wake !== 'recheck') {
          watch.cancel();
          watch = undefined;
          if (wake === 'disconnected') await scope.race(sleep(Math.random() * this.spreadMs()));
        }
        // The watch only wakes us; the queue itself, read by create revision, decides.
        view = await this.readQueue(acquisition);
        checkedAt = performance.now();
        this.channel.noteRevision(view.revision);
      }
    } finally {
      watch?.cancel();
    }
  }

  /**
   * Waits for the watch to arm (when fresh) or fire, but never longer than about one renewal
   * interval: a waiter must not depend on one stream alone (a member that stalls without breaking
   * the connection, a partitioned one that answers creates but sees no deletion), so at least that
   * often it re-reads the queue, unless a probe of the stream (one for all waiters) vouches for
   * it. The pause is jittered so that waiters' checks do not bunch.
   */
  private async nextWake({ scope, session }: Acquisition, watch: DeletionWatch, fresh: boolean): Promise<Wake> {
    let timer: NodeJS.Timeout | undefined;
    const recheck = new Promise<Wake>(resolve => {
      timer = setTimeout(() => resolve('recheck'), ((session.grantedTtl * 1000) / 3) * (0.75 + Math.random() / 2));
    });
    const wakes: Array<Promise<Wake>> = [watch.changed, recheck];
    if (fresh)
      wakes.push(
        watch.ready().then(
          armedAt => ({ armedAt }),
          () => 'refused' as const,
        ),
      );
    try {
      return await scope.race(Promise.race(wakes));
    } finally {
      clearTimeout(timer);
    }
  }

  /** Counts the waiters one stream failure wakes: each wakes synchronously, before any re-reads. */
  private noteDisconnect(): void {
    const now = performance.now();
    if (now - this.burst.at > MAX_SPREAD_MS) this.burst = { at: now, size: 0 };
    this.burst.size++;
  }

  private spreadMs(): number {
    return Math.min(MAX_SPREAD_MS, this.burst.size * SPREAD_PER_WAITER_MS);
  }

  /**
   * Re-reads the queue, retrying while the wait lasts when etcd cannot answer (a member
   * restarting, a broken watch stream): giving up here would cost the waiter its place in line.
   * The wait timeout, the caller's signal and the session's loss still end it.
   */
  private readQueue({ scope, prefix, key, createRevision, mode }: QueuedAcquisition): Promise<QueueView> {
    return this.whileUnavailable(scope, key, 'reading the queue', () => this.store.view(prefix, key, createRevision, aheadReads(mode)));
  }

  /**
   * Rewrites our key as it is (same value and lease, so the same create revision: the fencing
   * token is unchanged), which wakes the waiter watching it for a change: it may now be first.
   */
  private async announceEntry(acquisition: QueuedAcquisition): Promise<void> {
    const { scope, key, createRevision, value, session, resource } = acquisition;
    const rewritten = await this.whileUnavailable(scope, key, 'rewriting our key', () =>
      this.store.rewriteOwn(key, createRevision, value, session.leaseId),
    );
    if (!rewritten) throw new LockLostError(resource, 'our queue key vanished as the lock was granted (lease expired or key deleted)');
  }

  /** Runs `request`, again with backoff while etcd cannot answer, as long as the wait lasts. */
  private async whileUnavailable<T>(scope: WaitScope, key: string, what: string, request: () => Promise<T>): Promise<T> {
    for (const pauses = backoffPauses(READ_RETRY); ;) {
      try {
        return await scope.race(request());
      } catch (err) {
        if (scope.aborted || !(toLockError(err, what) instanceof EtcdUnavailableError)) throw err;
        const pause = pauses.next().value;
        this.logger.debug?.(`${key}: ${what} failed, retrying in ${pause} ms: ${String(err)}`);
        await scope.race(sleep(pause));
      }
    }
  }
}

function sameWait(a: WaitOn, b: WaitOn): boolean {
  return a.key === b.key && a.on === b.on && a.createRevision === b.createRevision;
}
