import { EtcdLeaseInvalidError, type Etcd3 } from 'etcd3';
import { setTimeout as sleep } from 'node:timers/promises';
import { Acquisition } from './acquisition.js';
import { LockBusyError, LockClientClosedError, LockLostError, LockModeMismatchError } from './errors.js';
import { toLockError } from './etcd-errors.js';
import { LockHandle } from './handle.js';
import { KeyCleanup } from './key-cleanup.js';
import { idleWatchKey, resourcePrefix, waiterKey } from './keys.js';
import { EXCLUSIVE, modeOfKey, modeSuffix, sameMode } from './lock-mode.js';
import { LeaseKeysAudit } from './lease-keys-audit.js';
import type { AcquireOneOptions } from './lock-client.js';
import type { LockEvents } from './lock-events.js';
import type { LockLogger } from './logger.js';
import { entryValue, type EnqueueGuard, type Enqueued, type QueueStore } from './queue-store.js';
import { aheadReads } from './queue-turn.js';
import { QueueWait } from './queue-wait.js';
import type { Session } from './session.js';
import { WaitScope } from './wait-scope.js';
import { WatchChannel } from './watch-channel.js';

/** How long a failed acquisition waits for its key's deletion before rejecting anyway. */
const CLEANUP_GRACE_MS = 250;

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
  private readonly wait: QueueWait;
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
    this.wait = new QueueWait(this.channel, store, logger, events);
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
      await this.wait.waitForTurn(queued, view);
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
  /**
   * Waits in the queue under `prefix` with a key another layout put there (an election's
   * candidate key, `<prefix><lease hex>`): the same exclusive rule, watches, re-reads and re-checks
   * of our own key as a lock's wait. Resolves once nothing is ahead of it.
   * @internal For the library's own layouts (elections).
   */
  async waitInQueue(queued: {
    session: Session;
    resource: string;
    prefix: string;
    key: string;
    createRevision: string;
    value: Buffer;
    scope: WaitScope;
  }): Promise<void> {
    const { session, resource, prefix, key, createRevision, value, scope } = queued;
    const acquisition = new Acquisition(session, resource, prefix, key, scope, false, EXCLUSIVE, value).queued(createRevision);
    const view = await scope.race(this.store.view(prefix, key, createRevision, aheadReads(EXCLUSIVE)));
    this.channel.noteRevision(view.revision);
    await this.wait.waitForTurn(acquisition, view);
  }

  close(): void {
    this.closing = true;
    this.channel.close();
  }

  /** Settles once every background key deletion has finished. */
  settled(): Promise<void> {
    return this.cleanup.settled();
  }
}
