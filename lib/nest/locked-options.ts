import { describeValue, InvalidLockArgumentError, resolveLockMode, resolveTtl, resolveWaitTimeout } from '../core/index.js';
import { assertLockKey, type LockKey } from './lock-key.js';
import type { LockRunOptions } from './lock.service.js';

/** Options of `@Locked`. */
export interface LockedOptions {
  /** Wait at most this long for the lock, in ms (default: the module's `waitTimeout`). */
  waitTimeout?: number;
  /** Do not wait: fail with `LockBusyError` (HTTP 409) when the lock is held. */
  tryOnly?: boolean;
  /** Lease TTL in seconds for this lock, if it must differ from the module's. */
  ttl?: number;
  /** Take it shared (a reader): shared holders run together, never beside an exclusive one (the default). */
  shared?: boolean;
  /** Take one of `permits` slots of a semaphore: at most that many run at once across all instances. */
  permits?: number;
}

export interface LockedDefinition {
  key: LockKey;
  options: LockRunOptions;
}

/** Checks a `@Locked` declaration when the class is defined, so mistakes fail at startup. */
export function defineLocked(key: LockKey, options: LockedOptions = {}): LockedDefinition {
  assertLockKey(key);
  const { waitTimeout, tryOnly, ttl, shared, permits, ...unknown } = options;
  const extra = Object.keys(unknown)[0];
  if (extra !== undefined) throw new InvalidLockArgumentError(`@Locked option ${extra}`, 'unknown option');
  if (tryOnly !== undefined && typeof tryOnly !== 'boolean') {
    throw new InvalidLockArgumentError('@Locked option tryOnly', `expected a boolean, got ${describeValue(tryOnly)}`);
  }
  const mode = resolveLockMode(shared, permits, '@Locked option ');
  return {
    key,
    options: {
      ...(mode.kind === 'shared' && { shared: true }),
      ...(mode.kind === 'semaphore' && { permits: mode.permits }),
      waitTimeout: waitTimeout === undefined ? undefined : resolveWaitTimeout(waitTimeout, '@Locked option waitTimeout'),
      ttl: ttl === undefined ? undefined : resolveTtl(ttl, '@Locked option ttl'),
      tryOnly,
    },
  };
}
