import { GRPCDeadlineExceededError } from 'etcd3';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffPauses } from './backoff.js';
import { EtcdUnavailableError, InvalidLockArgumentError, LockBusyError } from './errors.js';
import { LockHandle, LockSet, runWhileHeld } from './handle.js';
import { compareResources, resourcePrefix } from './keys.js';
import { LockEvents } from './lock-events.js';
import { resolveLockMode, type LockMode } from './lock-mode.js';
import type { LockInspection } from './lock-inspection.js';
import { resolveTtl, resolveWaitTimeout, type ResolvedLockOptions } from './options.js';

/** Options of one acquisition. */
export interface AcquireOptions {
  /** How long to wait for the lock, in ms; `0` fails at once when busy, `Infinity` waits for ever. Defaults to the client's `waitTimeout`. */
  waitTimeout?: number;
  /** Gives up waiting when aborted; the acquisition rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Lease TTL in seconds for this lock, if it must differ from the client's (one lease per distinct TTL). */
  ttl?: number;
  /**
   * Take it as a reader of a read/write lock: shared holders run together, never with an
   * exclusive one (the default, a writer). Fair: a reader arriving after a queued writer waits
   * behind it. `etcdctl lock` and Go's Mutex on the same name are writers.
   */
  shared?: boolean;
  /**
   * Take one of `permits` slots of a semaphore: at most that many holders at once across every
   * client of the prefix. Every client must give the same number for a name, else
   * `LockModeMismatchError`.
   */
  permits?: number;
}

/** One resource's acquisition, as the client facade hands it to a backend. */
export interface AcquireOneOptions {
  /** Time left to wait, in ms. */
  waitTimeoutMs: number;
  /** The wait timeout as the caller gave it, for the LockTimeoutError message. */
  statedTimeoutMs: number;
  tryOnly: boolean;
  signal?: AbortSignal;
  mode: LockMode;
}

/**
 * State of the client's lease, for health checks: `alive`; `renewing` (alive, but a renewal is
 * overdue); `lost` (until a fresh lease is granted: the client asks for one at once); `connecting`; `idle`
 * (no lease yet: lazy start); `closed`.
 */
export interface SessionStatus {
  state: 'alive' | 'renewing' | 'connecting' | 'lost' | 'closed' | 'idle';
  leaseId?: string;
  grantedTtl?: number;
  remainingMs?: number;
}

type Resources = string | readonly string[];
export type HeldLock<R extends Resources> = R extends string ? LockHandle : LockSet;

/**
 * The lock API shared by the etcd client and the in-memory one used in tests: argument checks,
 * try-only and `withLock` semantics, several resources taken in one canonical order, and events.
 * A backend only supplies how one resource is queued for and granted.
 */
export abstract class LockClient {
  /** Lock events (waiting, acquired, released, lost, failed), for metrics and debugging. */
  readonly events: LockEvents;

  protected constructor(readonly options: ResolvedLockOptions) {
    this.events = new LockEvents(options.logger);
  }

  /** Connects now (grants the lease), so a bad endpoint or credential fails at startup. */
  abstract connect(): Promise<void>;

  /** The state of the lease for a TTL (default: the client's). */
  abstract status(ttl?: number): SessionStatus;

  /** Checks that the backend answers in time; resolves with the round trip in ms. */
  abstract ping(timeoutMs?: number): Promise<number>;

  /** The current holder and the waiters of a resource, in grant order. */
  abstract inspect(resource: string): Promise<LockInspection>;

  /** Stops taking locks and releases everything this client holds or waits for. */
  abstract close(): Promise<void>;

  /** Queues for one validated resource and resolves when it is held. */
  protected abstract acquireOne(resource: string, ttl: number, options: AcquireOneOptions): Promise<LockHandle>;

  /**
   * Waits for the lock (or, given a list, for every lock of the list, taken in one canonical order
   * so that two callers can never deadlock) and returns it held.
   * With `{ permits: N }` it takes one of N permits of a semaphore; with `{ shared: true }` a shared (reader's) lock.
   * @throws LockTimeoutError when the wait timeout runs out; LockLostError when the lease is lost while waiting;
   *   EtcdUnavailableError / EtcdAuthenticationError; InvalidLockArgumentError; LockModeMismatchError when the
   *   resource is in use as a semaphore of another size (or as a lock, for a semaphore); the signal's reason when aborted.
   */
  acquire<R extends Resources>(resource: R, options?: AcquireOptions): Promise<HeldLock<R>> {
    return this.take(resource, options, false);
  }

  /** Takes the lock only if it is free right now; resolves `null` when it is held (nothing is queued). */
  async tryAcquire<R extends Resources>(resource: R, options?: Omit<AcquireOptions, 'waitTimeout'>): Promise<HeldLock<R> | null> {
    try {
      return await this.take(resource, options, true);
    } catch (err) {
      if (err instanceof LockBusyError) return null;
      throw err;
    }
  }

  /**
   * Runs `fn` while holding the lock and releases it when `fn` settles, whatever the outcome.
   * `fn` gets the held lock: pass `lock.signal` to cancellable work and `lock.fencingToken` to
   * the store that the lock protects. If the lock is lost first, the call rejects at once with
   * the {@link LockLostError} (`fn` itself runs on until it heeds the signal). It resolves only if
   * the lock was held throughout: the lease deadline is checked again when `fn` settles, so a
   * section that blocked the event loop past the TTL rejects with `LockLostError` too.
   */
  async withLock<R extends Resources, T>(resource: R, fn: (lock: HeldLock<R>) => T | Promise<T>, options?: AcquireOptions): Promise<T> {
    const lock = await this.acquire(resource, options);
    return runWhileHeld(
      lock,
      () => fn(lock),
      () => lock.release(),
    );
  }

  private async take<R extends Resources>(resource: R, options: AcquireOptions = {}, tryOnly: boolean): Promise<HeldLock<R>> {
    for (const name of Object.keys(options ?? {})) {
      if (!ACQUIRE_OPTIONS.has(name)) throw new InvalidLockArgumentError(name, 'unknown option');
    }
    if (tryOnly && options.waitTimeout !== undefined) {
      throw new InvalidLockArgumentError('waitTimeout', 'tryAcquire never waits; use acquire() with a waitTimeout');
    }
    const waitTimeout = resolveWaitTimeout(options.waitTimeout ?? this.options.waitTimeout);
    const ttl = options.ttl === undefined ? this.options.ttl : resolveTtl(options.ttl);
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
      throw new InvalidLockArgumentError('signal', 'expected an AbortSignal');
    }
    const tryNow = tryOnly || waitTimeout === 0;
    // Try-only never waits; each of its requests is bounded by requestTimeout instead.
    const waitTimeoutMs = tryNow ? Infinity : waitTimeout;
    const mode = resolveLockMode(options.shared, options.permits);
    const oneOptions = { waitTimeoutMs, statedTimeoutMs: waitTimeoutMs, tryOnly: tryNow, signal: options.signal, mode };
    if (typeof resource === 'string' || !Array.isArray(resource)) {
      resourcePrefix(this.options.prefix, resource as string); // checks the name and the key's size, before any etcd call
      return (await this.acquireTimed(resource as string, ttl, oneOptions)) as HeldLock<R>;
    }
    return (await this.takeAll(resource, ttl, oneOptions)) as HeldLock<R>;
  }

  /** Takes several locks in the order of their keys, so every caller queues in the same order. */
  private async takeAll(resources: readonly string[], ttl: number, options: AcquireOneOptions): Promise<LockSet> {
    if (resources.length === 0) throw new InvalidLockArgumentError('resource', 'the list of resources is empty');
    for (const resource of resources) resourcePrefix(this.options.prefix, resource);
    const ordered = [...new Set(resources)].sort(compareResources);
    const deadline = performance.now() + options.waitTimeoutMs;
    const held: LockHandle[] = [];
    try {
      for (const resource of ordered) {
        const waitTimeoutMs = Math.max(0, deadline - performance.now());
        held.push(await this.acquireTimed(resource, ttl, { ...options, waitTimeoutMs }));
      }
      return new LockSet(held);
    } catch (err) {
      await Promise.all(held.map(h => h.release()));
      throw err;
    }
  }

  /**
   * Acquires one resource and reports the outcome. A fast refusal from etcd (a member
   * restarting, the client's circuit breaker about to half-open) does not fail an acquisition that
   * may still wait: it is retried with backoff, within the wait timeout and for at most
   * `dialTimeout`, so that a real outage still surfaces as EtcdUnavailableError.
   */
  private async acquireTimed(resource: string, ttl: number, options: AcquireOneOptions): Promise<LockHandle> {
    const started = performance.now();
    const giveUpRetryingAt = started + this.options.dialTimeout;
    for (const pauses = backoffPauses(ACQUIRE_RETRY); ;) {
      const waitTimeoutMs = options.waitTimeoutMs - (performance.now() - started);
      try {
        const handle = await this.acquireOne(resource, ttl, { ...options, waitTimeoutMs });
        const waitedMs = performance.now() - started;
        this.events.emit({ type: 'acquired', resource, key: handle.key, fencingToken: handle.fencingToken, waitedMs });
        return handle;
      } catch (error) {
        const now = performance.now();
        const pause = pauses.next().value;
        const retry =
          error instanceof EtcdUnavailableError &&
          // A request that timed out already spent a whole requestTimeout: report it, don't retry.
          !(error.cause instanceof GRPCDeadlineExceededError) &&
          !options.tryOnly &&
          now + pause < Math.min(giveUpRetryingAt, started + options.waitTimeoutMs) &&
          !options.signal?.aborted;
        if (!retry) {
          this.events.emit({ type: 'failed', resource, waitedMs: now - started, error });
          throw error;
        }
        this.options.logger.debug?.(`acquiring "${resource}": ${error.message}; retrying in ${pause} ms`);
        await pauseUnlessAborted(pause, options.signal);
      }
    }
  }
}

const ACQUIRE_OPTIONS = new Set(['waitTimeout', 'signal', 'ttl', 'shared', 'permits']);
/** Pauses between the attempts of an acquisition that etcd refused fast. */
const ACQUIRE_RETRY = { firstMs: 50, maxMs: 1000 };

/** Rejects with the signal's reason when aborted (the timer's own AbortError only wraps it). */
async function pauseUnlessAborted(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (err) {
    throw signal?.aborted ? signal.reason : err;
  }
}
