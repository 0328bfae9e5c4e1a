import type { LockMode } from './lock-mode.js';

/**
 * Every error this library raises extends {@link LockError}, so one `instanceof` check catches
 * them all, while the subclasses name the cause. They are plain classes (no HTTP types) so that
 * HTTP, RPC and WebSocket layers can each map them their own way.
 */
export class LockError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A resource name, option or argument is invalid. Raised before any call to etcd. */
export class InvalidLockArgumentError extends LockError {
  constructor(
    /** The option or argument at fault, e.g. `ttl` or `resource`. */
    readonly field: string,
    reason: string,
  ) {
    super(`Invalid ${field}: ${reason}`);
  }
}

/** The lock was still held by someone else when the wait timeout ran out. */
export class LockTimeoutError extends LockError {
  constructor(
    readonly resource: string,
    readonly waitTimeoutMs: number,
  ) {
    super(`Timed out after ${waitTimeoutMs} ms waiting for lock "${resource}"`);
  }
}

/** A try-only acquisition found the lock held; nothing was queued. */
export class LockBusyError extends LockError {
  constructor(readonly resource: string) {
    super(`Lock "${resource}" is held by another owner`);
  }
}

/**
 * The lock can no longer be trusted: its lease expired or could not be renewed in time, its key
 * was deleted, or the client was closed. Code protected by the lock must stop; writes must carry
 * the fencing token so that the store itself rejects a stale holder.
 */
export class LockLostError extends LockError {
  constructor(
    readonly resource: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`Lock "${resource}" lost: ${reason}`, options);
  }
}

/** etcd could not be reached (or did not answer in time). `cause` holds the client's error. */
export class EtcdUnavailableError extends LockError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(`etcd unavailable: ${reason}`, options);
  }
}

/** etcd refused our credentials or permissions. Retrying will not help. */
export class EtcdAuthenticationError extends LockError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(`etcd refused the credentials: ${reason}`, options);
  }
}

/**
 * etcd (or the etcd3 client) failed in a way that retrying will not change: a response that does
 * not decode, a request etcd rejects as malformed, an internal client error. `cause` holds the
 * original error.
 */
export class EtcdRequestError extends LockError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(`etcd request failed: ${reason}`, options);
  }
}

/**
 * The lock client was closed (application shutdown); no new lock can be taken, and acquisitions
 * still waiting when it closed reject with this error.
 */
export class LockClientClosedError extends LockError {
  constructor(options?: { cause?: unknown }) {
    super('The lock client is closed', options);
  }
}

/**
 * The resource is already held or queued for in another mode: a semaphore with another number
 * of permits, or a semaphore and a lock (shared or exclusive) on one name. Nothing was left
 * queued. `requested` is what this call asked for; `existing` what the queue's oldest key (or
 * the one in the way) says.
 */
export class LockModeMismatchError extends LockError {
  constructor(
    readonly resource: string,
    readonly requested: LockMode,
    readonly existing: LockMode,
  ) {
    super(`Lock "${resource}" is in use as ${describeMode(existing)}; refused ${describeMode(requested)} on it`);
  }
}

/**
 * A call holding a shared lock asked for the same resource exclusively (or in another mode) in
 * its own call chain. Waiting would deadlock on itself (the exclusive request queues behind its
 * own shared key), so it is refused: take the exclusive lock first, and shared ones inside it.
 */
export class LockUpgradeError extends LockError {
  constructor(
    readonly resource: string,
    readonly held: LockMode,
    readonly requested: LockMode,
  ) {
    super(
      `Lock "${resource}" is held as ${describeMode(held)} by this call chain; it cannot be taken as ${describeMode(requested)} inside it`,
    );
  }
}

/** "a semaphore of 3 permits", "a shared lock", "an exclusive lock". */
function describeMode(mode: LockMode): string {
  if (mode.kind === 'semaphore') return `a semaphore of ${mode.permits} permit${mode.permits === 1 ? '' : 's'}`;
  return mode.kind === 'shared' ? 'a shared lock' : 'an exclusive lock';
}
