import { LockBusyError } from '../core/index.js';

/**
 * A nested call needed a lock that is ordered before one its call chain already holds, and it
 * was busy. Waiting for it could deadlock (another chain may hold it and wait for ours), so such
 * a lock is only taken when free. Take both in one list at the outer call instead. A
 * `LockBusyError`, so HTTP answers 409 with `Retry-After`.
 */
export class LockOrderError extends LockBusyError {
  constructor(
    resource: string,
    /** The lock the chain holds that `resource` is ordered before. */
    readonly heldResource: string,
  ) {
    super(resource);
    this.message =
      `Lock "${resource}" is held by another owner, and this call chain already holds "${heldResource}", ` +
      `which is ordered after it: waiting could deadlock. Take both in one list at the outer call`;
  }
}
