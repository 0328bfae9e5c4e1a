import { AsyncLocalStorage } from 'node:async_hooks';
import type { LockClient, LockHandle, LockSet } from '../core/index.js';

/**
 * One lock taken by a `withLock`/`@Locked` call, shared with the nested calls that re-enter it
 * while it is held. The key is released when the last of those holders leaves; once that has
 * begun (or the handle was released by hand) nobody else can join, so a call that arrives later
 * through a captured async context takes the lock itself.
 */
export class SharedHold {
  /** The taking call counts as the first holder. */
  private holders = 1;
  private ended = false;
  private markIdle!: () => void;
  /** Resolves when the last holder has left. */
  readonly idle = new Promise<void>(resolve => (this.markIdle = resolve));

  constructor(readonly handle: LockHandle) {}

  /** Still held: no holder has ended it and nobody released the handle. */
  get held(): boolean {
    return !this.ended && !this.handle.released;
  }

  /**
   * Joins as a holder while the lock is held; returns false once it is released or being
   * released. Throws the `LockLostError` if it is lost: a lost lock is never lent.
   */
  join(): boolean {
    if (!this.held) return false;
    this.handle.throwIfLost();
    this.holders++;
    return true;
  }

  leave(): void {
    if (--this.holders > 0) return;
    this.ended = true;
    this.markIdle();
  }
}

/** What one call chain holds on one lock client. */
export interface ChainLocks {
  readonly holds: ReadonlyMap<string, SharedHold>;
  /** The lock of the innermost `withLock`/`@Locked` on this client. */
  readonly current: LockHandle | LockSet;
}

/**
 * The locks the current call chain holds. Keyed by lock client, so that a nested call into
 * another `LockService` (another prefix, another cluster) never borrows this one's locks.
 */
export interface LockScope {
  readonly chains: ReadonlyMap<LockClient, ChainLocks>;
  /** The lock of the innermost `withLock`/`@Locked`, whatever its client (for `@CurrentLock()`). */
  readonly current: LockHandle | LockSet;
  /**
   * Set by `LockInterceptor` to the `@Locked` definition whose handler call it has locked
   * already; compared by definition, not by function, since other decorators may wrap the handler.
   */
  readonly intercepted?: object;
}

export const lockScope = new AsyncLocalStorage<LockScope>();

/**
 * The scope inside a lock that is no client's re-entrant hold (a tick's, a leadership's):
 * `current()` sees it and nothing borrows it, while the caller's own holds stay in force, so a
 * nested `withLock` on a resource the caller holds re-enters it instead of queueing behind it.
 */
export function scopeWithCurrent(client: LockClient | undefined, lock: LockHandle): LockScope {
  const outer = lockScope.getStore();
  const chains = new Map(outer?.chains);
  if (client) chains.set(client, { holds: outer?.chains.get(client)?.holds ?? new Map(), current: lock });
  return { chains, current: lock };
}
