import { setTimeout as sleep } from 'node:timers/promises';
import type { Acquisition, QueuedAcquisition } from './acquisition.js';
import { backoffPauses } from './backoff.js';
import type { DeletionWatch, WatchFor, WatchWake } from './deletion-watch.js';
import { EtcdUnavailableError, LockBusyError, LockLostError } from './errors.js';
import { toLockError } from './etcd-errors.js';
import type { LockEvents } from './lock-events.js';
import type { LockLogger } from './logger.js';
import type { QueueStore, QueueView } from './queue-store.js';
import { aheadReads, rewritesOnEntry, turnOf, type WaitOn } from './queue-turn.js';
import type { WaitScope } from './wait-scope.js';
import type { WatchChannel } from './watch-channel.js';

/** Pause before re-arming a watch that etcd refused, so a persistent refusal cannot spin. */
const WATCH_RETRY_MS = 50;

/** Pauses between the re-reads of a queue that etcd could not answer. */
const READ_RETRY = { firstMs: WATCH_RETRY_MS, maxMs: 1000 };

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
 * The wait of every queued acquisition (mutex, reader, writer, semaphore), once its key is in the
 * queue: watch what the mode's rule says to, re-read the queue on each wake-up, never trust one
 * stream alone. One per client, shared by its waiters (it spreads their re-reads after a stream failure).
 */
export class QueueWait {
  /** Waiters woken by the last stream failure, and when it struck (for the re-read spread). */
  private burst = { at: -Infinity, size: 0 };

  constructor(
    private readonly channel: WatchChannel,
    private readonly store: QueueStore,
    private readonly logger: LockLogger,
    private readonly events: LockEvents,
  ) {}

  /**
   * The queue core: waits until the mode's rule lets our key enter, re-reading the queue on every
   * wake-up. A semaphore holder that entered on a later view than its put's then rewrites its
   * key, which wakes the waiter behind.
   */
  async waitForTurn(acquisition: QueuedAcquisition, view: QueueView): Promise<void> {
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
          // Entering on a view read after our put (we waited, or etcd3 retried the put and the
          // first view came later): a waiter behind may have seen us waiting and watch our key.
          if ((waited || view.revision !== acquisition.createRevision) && rewritesOnEntry(mode)) {
            await this.announceEntry(acquisition);
          }
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
