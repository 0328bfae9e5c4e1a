import { LockLostError } from './errors.js';
import { EXCLUSIVE, type LockMode } from './lock-mode.js';
import type { LockEvents } from './lock-events.js';

/** Why a lease ended; every lock held on it is lost for this reason. */
export interface LeaseEnd {
  reason: string;
  cause?: unknown;
}

/** The lease a handle's key lives on: an etcd session, or the in-memory client's lease. */
export interface LockLease {
  /** The lease id in hex. */
  readonly leaseHex: string;
  /** False once the lease is lost or its validity deadline has passed. */
  readonly alive: boolean;
  readonly end: LeaseEnd | undefined;
  /** Calls `listener` once when the lease ends; returns the remover. */
  onEnd(listener: (end: LeaseEnd) => void): () => void;
  /** Declares the lease lost now. */
  lose(reason: string): void;
}

/**
 * A held lock. Keep it until the protected work is done, then `release()` it.
 *
 * The lock is only as safe as the lease behind it: a process pause or a network partition can
 * outlive the lease. So pass `fencingToken` along with every write the lock protects, and have
 * the store reject a token lower than the highest it has seen.
 */
export class LockHandle {
  private readonly controller = new AbortController();
  /** Mirrors `controller.signal.aborted` without creating the signal (Node makes it lazily). */
  private markedLost = false;
  private releasing: Promise<void> | undefined;
  private readonly stopWatchingSession: () => void;
  private readonly acquiredAt = performance.now();

  /** @internal Created by the lock client only. */
  constructor(
    /** The resource name as given to `acquire`. */
    readonly resource: string,
    /** The etcd key that holds the lock (`<prefix><resource>/<lease hex>_<n>`). */
    readonly key: string,
    /**
     * The key's create revision: strictly greater than the token of every earlier holder of
     * this resource. Hand it to the protected store so that it can refuse stale holders.
     */
    readonly fencingToken: bigint,
    private readonly session: LockLease,
    private readonly deleteKey: (handle: LockHandle) => Promise<void>,
    private readonly events: LockEvents,
    /** How the lock is held: exclusive (the default), shared, or as one of a semaphore's permits. */
    readonly mode: LockMode = EXCLUSIVE,
  ) {
    this.stopWatchingSession = session.onEnd(end => this.markLost(end.reason, end.cause));
  }

  /**
   * Aborts with a {@link LockLostError} when the lock is lost (lease expired, key deleted, client
   * closed). Reading it checks the lease deadline on the spot: after a long pause (GC, SIGSTOP)
   * the timers that would report the loss may not have run yet, but `lock.signal.aborted` is
   * already true.
   */
  get signal(): AbortSignal {
    this.checkSession();
    return this.controller.signal;
  }

  /** The etcd lease the lock's key is bound to, in hex (as `etcdctl lease list` shows it). */
  get leaseId(): string {
    return this.session.leaseHex;
  }

  /** True once the lock is known to be lost. */
  get lost(): boolean {
    return this.signal.aborted && !this.releasing;
  }

  /** True once `release()` was called (the key may still be being deleted). */
  get released(): boolean {
    return this.releasing !== undefined;
  }

  /**
   * Throws the {@link LockLostError} if the lock is lost. Checks the session deadline on the
   * spot, so a process resumed after a long pause learns of the loss before its timers run.
   */
  throwIfLost(): void {
    this.signal.throwIfAborted();
  }

  /**
   * Releases the lock. Idempotent, and safe after loss: the key is deleted only if it still has
   * this holder's create revision, so a release can never delete another holder's key.
   */
  release(): Promise<void> {
    this.releasing ??= (async () => {
      this.stopWatchingSession();
      if (!this.markedLost) {
        this.events.emit({ type: 'released', resource: this.resource, key: this.key, heldMs: this.heldMs() });
      }
      await this.deleteKey(this);
    })();
    return this.releasing;
  }

  /** @internal The lock client calls this when it learns the key is gone. */
  markLost(reason: string, cause?: unknown): void {
    if (this.releasing || this.markedLost) return;
    this.markedLost = true;
    this.controller.abort(new LockLostError(this.resource, reason, { cause }));
    this.events.emit({ type: 'lost', resource: this.resource, key: this.key, heldMs: this.heldMs(), reason });
  }

  private heldMs(): number {
    return performance.now() - this.acquiredAt;
  }

  private checkSession(): void {
    if (!this.session.alive && !this.session.end) {
      this.session.lose('the lease was not renewed in time (etcd unreachable, or this process stalled)');
    }
  }
}

/** Several locks taken together in one canonical order; released together. */
export class LockSet {
  private combined: AbortSignal | undefined;

  /** @internal */
  constructor(readonly handles: readonly LockHandle[]) {}

  /**
   * Aborts as soon as any one of the locks is lost. Reading it checks the lease deadlines on the
   * spot, as {@link LockHandle.signal} does.
   */
  get signal(): AbortSignal {
    const signals = this.handles.map(h => h.signal);
    this.combined ??= AbortSignal.any(signals);
    return this.combined;
  }

  get resources(): string[] {
    return this.handles.map(h => h.resource);
  }

  /** The fencing token of one resource of the set. */
  fencingToken(resource: string): bigint {
    const handle = this.handles.find(h => h.resource === resource);
    if (!handle) throw new RangeError(`"${resource}" is not part of this lock set`);
    return handle.fencingToken;
  }

  throwIfLost(): void {
    for (const handle of this.handles) handle.throwIfLost();
  }

  async release(): Promise<void> {
    await Promise.all(this.handles.map(h => h.release()));
  }
}

/**
 * Runs `fn` under `lock`, then calls `release`. Settles like `fn` only if the lock was held
 * throughout: it rejects with the {@link LockLostError} as soon as the loss is known, and re-checks
 * the lease deadline when `fn` settles, since a section that blocked the event loop past the TTL
 * gave no timer the chance to report the loss while it ran.
 */
export async function runWhileHeld<T>(lock: LockHandle | LockSet, fn: () => T | Promise<T>, release: () => Promise<unknown>): Promise<T> {
  let onLost: (() => void) | undefined;
  let settled: Promise<T> | undefined;
  try {
    const { signal } = lock;
    signal.throwIfAborted();
    const lost = new Promise<never>((_, reject) => {
      onLost = () => reject(signal.reason);
      signal.addEventListener('abort', onLost, { once: true });
    });
    settled = (async () => {
      const value = await fn();
      lock.throwIfLost();
      return value;
    })().finally(release);
    return await Promise.race([settled, lost]);
  } finally {
    if (onLost) lock.signal.removeEventListener('abort', onLost);
    if (settled) settled.catch(() => undefined);
    else await release();
  }
}
