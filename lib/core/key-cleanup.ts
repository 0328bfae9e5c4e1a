import { setTimeout as sleep } from 'node:timers/promises';
import type { Acquisition } from './acquisition.js';
import { backoffPauses } from './backoff.js';
import type { LockLogger } from './logger.js';
import type { QueueStore } from './queue-store.js';
import type { Session } from './session.js';

/**
 * Deletes the keys of acquisitions that ended (released, or failed while queued), each guarded on
 * its create revision. When etcd cannot be reached, a deletion goes on in the background while
 * the lease lives (after that, etcd deletes the key with the lease).
 */
export class KeyCleanup {
  private readonly background = new Set<Promise<void>>();

  constructor(
    private readonly store: QueueStore,
    private readonly logger: LockLogger,
  ) {}

  /** Removes the key of an acquisition that failed, so it cannot stall the queue. */
  abandon(acquisition: Acquisition): Promise<void> {
    const removed = this.removeKeyOf(acquisition);
    this.track(removed);
    return removed;
  }

  async deleteKey(session: Session, key: string, createRevision: string): Promise<void> {
    try {
      await this.store.deleteOwn(key, createRevision);
    } catch (err) {
      this.logger.warn(`could not delete lock key ${key} (${String(err)}); retrying in the background`);
      this.track(this.retry(session, key, () => this.store.deleteOwn(key, createRevision)));
    }
  }

  /** Settles once every background key deletion has finished. */
  async settled(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  private async removeKeyOf({ session, key, createRevision, put }: Acquisition): Promise<void> {
    if (createRevision !== undefined) {
      await this.deleteKey(session, key, createRevision);
    } else if (put) {
      // The put may still be in flight or may have committed unseen: wait for its outcome.
      this.track(
        put.then(
          outcome => (outcome.kind === 'refused' ? undefined : this.deleteKey(session, key, outcome.createRevision)),
          () => this.retry(session, key, () => this.store.deleteUnique(key)),
        ),
      );
    }
  }

  private async retry(session: Session, key: string, attempt: () => Promise<void>): Promise<void> {
    for (const pause of backoffPauses(DELETE_RETRY)) {
      if (session.end !== undefined) return;
      await sleep(pause);
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

/** Pauses between the attempts of a background key deletion. */
const DELETE_RETRY = { firstMs: 100, maxMs: 2000 };
