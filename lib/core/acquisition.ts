import type { LockMode } from './lock-mode.js';
import type { Enqueued } from './queue-store.js';
import type { Session } from './session.js';
import type { WaitScope } from './wait-scope.js';

/**
 * One acquisition's place in a resource's queue (of a mutex, a read/write lock or a semaphore), as Go's `concurrency.Mutex` keeps `pfx`, `myKey`
 * and `myRev`: the queue it waits in, its own key there, and that key's create revision once put.
 */
export class Acquisition {
  /** The put that queues us, once sent: it may have committed even when it failed. */
  put: Promise<Enqueued> | undefined;
  /** Our key's create revision, once the put answered: the fencing token if granted. */
  createRevision: string | undefined;

  constructor(
    /** The lease our key lives on. */
    readonly session: Session,
    readonly resource: string,
    /** `<prefix><encoded resource>/`: every waiter of the resource has its key under it. */
    readonly prefix: string,
    /** Our own key, `<prefix><lease hex>_<n>`. */
    readonly key: string,
    /** What may end the wait early: its timeout, the caller's signal, the session's loss. */
    readonly scope: WaitScope,
    /** Take the lock only if it is free now; never wait. */
    readonly tryOnly: boolean,
    /** Exclusive, shared or a semaphore's: what the queue's rule grants it by. */
    readonly mode: LockMode,
    /** Our key's value, written again unchanged if the key is rewritten. */
    readonly value: Buffer,
  ) {}

  /** Records our key's create revision, once the put answered. */
  queued(createRevision: string): QueuedAcquisition {
    this.createRevision = createRevision;
    return this as QueuedAcquisition;
  }
}

/** An acquisition whose key is in the queue. */
export type QueuedAcquisition = Acquisition & { readonly createRevision: string };
