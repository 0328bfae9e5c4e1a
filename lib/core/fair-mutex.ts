import type { Etcd3, Watcher } from 'etcd3';
import { DeletionWatch } from './deletion-watch.js';
import { EtcdUnavailableError, LockBusyError, LockLostError } from './errors.js';
import { toLockError } from './etcd-errors.js';
import { LockHandle } from './handle.js';
import { LeaseKeysAudit } from './lease-keys-audit.js';
import { resourcePrefix } from './keys.js';
import type { AcquireOneOptions } from './lock-client.js';
import type { LockEvents } from './lock-events.js';
import type { LockLogger } from './logger.js';
import type { Enqueued, QueueStore, QueueView } from './queue-store.js';
import type { Session } from './session.js';
import { WaitScope } from './wait-scope.js';

/** Pause before re-arming a watch that etcd refused, so a persistent refusal cannot spin. */
const WATCH_RETRY_MS = 50;

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
 */
export class FairMutex {
  private sequence = 0;
  private readonly background = new Set<Promise<void>>();
  private readonly audits = new WeakMap<Session, LeaseKeysAudit>();
  /**
   * etcd3 tears its shared watch stream down when the last watcher goes, so a process waiting for
   * one lock at a time would open a new gRPC stream for every wait (~3.5 ms instead of ~0.5 ms to
   * arm a watch). One idle watch, on a key no lock ever uses, keeps the stream open.
   */
  private idleWatch: Watcher | undefined;

  constructor(
    private readonly client: Etcd3,
    private readonly store: QueueStore,
    private readonly keyPrefix: string,
    private readonly logger: LockLogger,
    private readonly events: LockEvents,
  ) {}

  async acquire(session: Session, resource: string, options: AcquireOneOptions): Promise<LockHandle> {
    const prefix = resourcePrefix(this.keyPrefix, resource);
    const key = `${prefix}${session.leaseHex}_${(++this.sequence).toString(36)}`;
    const scope = new WaitScope(resource, options, session);
    const audit = this.auditOf(session);
    const acquisitionEnded = audit.begin(key);
    let put: Promise<Enqueued> | undefined;
    let createRevision: string | undefined;
    try {
      scope.throwIfAborted();
      put = this.store.enqueue(prefix, key, session.leaseId, options.tryOnly);
      const enqueued = await scope.race(put);
      if (enqueued.kind === 'busy') throw new LockBusyError(resource);
      createRevision = enqueued.createRevision;
      const view =
        enqueued.kind === 'queued'
          ? { revision: enqueued.revision, ownExists: true, predecessor: enqueued.predecessor }
          : await scope.race(this.store.view(prefix, key, createRevision));
      if (view.predecessor && !options.tryOnly) this.events.emit({ type: 'waiting', resource, key });
      await this.waitForTurn(scope, resource, prefix, key, createRevision, view, options.tryOnly);
      if (!session.alive) throw new LockLostError(resource, 'the session expired as the lock was granted');
      const revision = createRevision;
      const handle = new LockHandle(resource, key, BigInt(revision), session, held => {
        audit.delete(held);
        return this.deleteKey(session, key, revision);
      }, this.events);
      audit.add(handle);
      return handle;
    } catch (err) {
      const cleanup = this.abandon(session, key, createRevision, put);
      this.track(cleanup);
      // Remove our key before rejecting, so the caller never finds its own failed attempt still
      // queued, but only within a short grace: with etcd unreachable the delete could take a whole
      // request timeout, and the rejection must not come that much later than the wait timeout.
      // (A lost session's keys go with its lease anyway.)
      if (session.alive) await Promise.race([cleanup, delay(CLEANUP_GRACE_MS, { unref: true })]);
      throw scope.aborted ? scope.reason : toLockError(err, `acquiring lock "${resource}"`);
    } finally {
      scope.dispose();
      acquisitionEnded();
    }
  }

  private auditOf(session: Session): LeaseKeysAudit {
    let audit = this.audits.get(session);
    if (!audit) {
      audit = new LeaseKeysAudit(this.client, session, this.store, this.keyPrefix, this.logger);
      this.audits.set(session, audit);
    }
    return audit;
  }

  /** Settles once every background key deletion has finished, and drops the idle watch. */
  async settled(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
    await this.idleWatch?.cancel().catch(() => undefined);
    this.idleWatch = undefined;
  }

  private keepWatchStreamOpen(): void {
    if (this.idleWatch) return;
    // Lock keys always end in `/<lease>_<n>`, so `<prefix>\0` is never one of them.
    this.idleWatch = this.client.watch().key(`${this.keyPrefix}\0`).watcher();
    this.idleWatch.on('error', err => this.logger.debug?.(`idle watch failed: ${String(err)}`));
  }

  private async waitForTurn(
    scope: WaitScope,
    resource: string,
    prefix: string,
    key: string,
    createRevision: string,
    view: QueueView,
    tryOnly: boolean,
  ): Promise<void> {
    let watch: DeletionWatch | undefined;
    let watchedRevision: string | undefined;
    try {
      for (;;) {
        if (!view.ownExists) {
          throw new LockLostError(resource, 'our queue key vanished while waiting (lease expired or key deleted)');
        }
        const predecessor = view.predecessor;
        if (!predecessor) return;
        if (tryOnly) throw new LockBusyError(resource);
        if (watch && watchedRevision === predecessor.createRevision) {
          await scope.race(watch.changed);
          watch.cancel();
          watch = undefined;
        } else {
          watch?.cancel();
          this.keepWatchStreamOpen();
          watch = new DeletionWatch(this.client, predecessor.key.toString());
          watchedRevision = predecessor.createRevision;
          try {
            // Armed at the revision we last read: nothing changed in between, the view holds.
            if ((await scope.race(watch.ready())) === view.revision) continue;
          } catch (err) {
            if (scope.aborted) throw err;
            this.logger.debug?.(`watch on ${predecessor.key.toString()} refused, retrying: ${String(err)}`);
            watch.cancel();
            watch = undefined;
            await scope.race(delay(WATCH_RETRY_MS));
          }
        }
        // The watch only wakes us; the queue itself, read by create revision, decides.
        view = await this.readQueue(scope, prefix, key, createRevision);
      }
    } finally {
      watch?.cancel();
    }
  }

  /**
   * Re-reads the queue, retrying while the wait lasts when etcd cannot answer (a member
   * restarting, a broken watch stream): giving up here would cost the waiter its place in line.
   * The wait timeout, the caller's signal and the session's loss still end it.
   */
  private async readQueue(scope: WaitScope, prefix: string, key: string, createRevision: string): Promise<QueueView> {
    for (let pause = WATCH_RETRY_MS; ; pause = Math.min(pause * 2, 1000)) {
      try {
        return await scope.race(this.store.view(prefix, key, createRevision));
      } catch (err) {
        if (scope.aborted || !(toLockError(err, 'reading the queue') instanceof EtcdUnavailableError)) throw err;
        this.logger.debug?.(`${key}: reading the queue failed, retrying in ${pause} ms: ${String(err)}`);
        await scope.race(delay(pause));
      }
    }
  }

  /**
   * Removes the key of an acquisition that failed, so it cannot stall the queue. When etcd
   * cannot be reached now, the deletion goes on in the background while the lease lives (after
   * that, etcd deletes the key with the lease).
   */
  private async abandon(session: Session, key: string, createRevision: string | undefined, put: Promise<Enqueued> | undefined) {
    if (createRevision !== undefined) {
      await this.deleteKey(session, key, createRevision);
    } else if (put) {
      // The put may still be in flight or may have committed unseen: wait for its outcome.
      this.track(
        put.then(
          outcome => (outcome.kind === 'busy' ? undefined : this.deleteKey(session, key, outcome.createRevision)),
          () => this.retry(session, key, () => this.store.deleteUnique(key)),
        ),
      );
    }
  }

  private async deleteKey(session: Session, key: string, createRevision: string): Promise<void> {
    try {
      await this.store.deleteOwn(key, createRevision);
    } catch (err) {
      this.logger.warn(`could not delete lock key ${key} (${String(err)}); retrying in the background`);
      this.track(this.retry(session, key, () => this.store.deleteOwn(key, createRevision)));
    }
  }

  private async retry(session: Session, key: string, attempt: () => Promise<void>): Promise<void> {
    for (let pause = 100; session.end === undefined; pause = Math.min(pause * 2, 2000)) {
      await delay(pause);
      try {
        await attempt();
        return;
      } catch (err) {
        this.logger.debug?.(`deleting lock key ${key} failed again: ${String(err)}`);
      }
    }
  }

  private track(work: Promise<void>): void {
    const tracked = work.catch(() => undefined).finally(() => this.background.delete(tracked));
    this.background.add(tracked);
  }
}

function delay(ms: number, { unref = false } = {}): Promise<void> {
  return new Promise(resolve => {
    const timer = setTimeout(resolve, ms);
    if (unref) timer.unref();
  });
}
