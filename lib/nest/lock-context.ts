import { AsyncLocalStorage } from 'node:async_hooks';
import type { LockHandle, LockSet } from '../core/index.js';

/** What the current call chain holds, so nested `@Locked`/`withLock` calls on the same resource re-enter. */
export interface LockScope {
  readonly locks: ReadonlyMap<string, LockHandle>;
  /** The lock set the innermost `@Locked`/`withLock` took or borrowed. */
  readonly current: LockHandle | LockSet;
  /** Set by the interceptor: the handler whose call it already locked. */
  readonly interceptedHandler?: Function;
}

export const lockScope = new AsyncLocalStorage<LockScope>();
