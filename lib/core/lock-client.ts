import { ConsecutiveBreaker, circuitBreaker, handleWhen } from 'cockatiel';
import { Etcd3, isRecoverableError } from 'etcd3';
import { InvalidLockArgumentError, LockBusyError, LockClientClosedError } from './errors.js';
import { toLockError } from './etcd-errors.js';
import { FairMutex } from './fair-mutex.js';
import { LockHandle, LockSet, runWhileHeld } from './handle.js';
import { assertResourceName, encodeResource } from './keys.js';
import { resolveLockOptions, resolveTtl, resolveWaitTimeout, type LockClientOptions, type ResolvedLockOptions } from './options.js';
import { QueueStore } from './queue-store.js';
import { Session } from './session.js';

/** Options of one acquisition. */
export interface AcquireOptions {
  /** How long to wait for the lock, in ms; `0` fails at once when busy, `Infinity` waits for ever. Defaults to the client's `waitTimeout`. */
  waitTimeout?: number;
  /** Gives up waiting when aborted; the acquisition rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Lease TTL in seconds for this lock, if it must differ from the client's (one lease per distinct TTL). */
  ttl?: number;
}

/**
 * State of the client's lease, for health checks: `alive`; `renewing` (alive, but a renewal is
 * overdue); `lost` (a fresh lease will be granted on the next acquisition); `connecting`; `idle`
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
 * Distributed locks on etcd: fair (FIFO by create revision), bound to one renewed lease, with a
 * fencing token per grant and an AbortSignal that fires when the lock is lost. Framework-free;
 * the NestJS module wraps one instance of it.
 */
export class EtcdLockClient {
  readonly options: ResolvedLockOptions;
  /** The underlying etcd3 client. */
  readonly etcd: Etcd3;
  private readonly mutex: FairMutex;
  /** One session per lease TTL in use; nearly always just the default one. */
  private readonly sessions = new Map<number, Promise<Session>>();
  private readonly resolvedSessions = new Map<number, Session>();
  private closed = false;

  constructor(options: LockClientOptions = {}) {
    this.options = resolveLockOptions(options);
    this.etcd = this.options.client ?? createEtcdClient(this.options);
    this.mutex = new FairMutex(this.etcd, new QueueStore(this.etcd, this.options.requestTimeout), this.options.prefix, this.options.logger);
  }

  /** Connects to etcd and grants the lease now, so a bad endpoint or credential fails at startup. */
  async connect(): Promise<void> {
    await this.session(this.options.ttl, this.options.dialTimeout);
  }

  /**
   * Waits for the lock (or, given a list, for every lock of the list, taken in one canonical order
   * so that two callers can never deadlock) and returns it held.
   * @throws LockTimeoutError when the wait timeout runs out; LockLostError when the lease is lost while waiting;
   *   EtcdUnavailableError / EtcdAuthenticationError; InvalidLockArgumentError; the signal's reason when aborted.
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
   * the {@link LockLostError} (`fn` itself runs on until it heeds the signal).
   */
  async withLock<R extends Resources, T>(resource: R, fn: (lock: HeldLock<R>) => T | Promise<T>, options?: AcquireOptions): Promise<T> {
    const lock = await this.acquire(resource, options);
    return runWhileHeld(lock, [lock], () => fn(lock));
  }

  status(ttl = this.options.ttl): SessionStatus {
    if (this.closed) return { state: 'closed' };
    const pending = this.sessions.get(ttl);
    if (!pending) return { state: 'idle' };
    const session = this.resolvedSessions.get(ttl);
    if (!session) return { state: 'connecting' };
    return {
      state: !session.alive ? 'lost' : session.renewalOverdue ? 'renewing' : 'alive',
      leaseId: session.leaseHex,
      grantedTtl: session.grantedTtl,
      remainingMs: session.remainingMs,
    };
  }

  /**
   * Checks that etcd answers a linearizable read (so a member without quorum counts as down)
   * within `timeoutMs`; resolves with the round trip in ms.
   * @throws EtcdUnavailableError / EtcdAuthenticationError
   */
  async ping(timeoutMs = this.options.requestTimeout): Promise<number> {
    const started = performance.now();
    try {
      await this.etcd.kv.range({ key: Buffer.from(this.options.prefix), count_only: true, limit: 1 }, { deadline: Date.now() + timeoutMs });
    } catch (err) {
      throw toLockError(err, 'reading from etcd');
    }
    return performance.now() - started;
  }

  /**
   * Stops taking locks, revokes every lease (deleting all our keys at once, so waiters elsewhere
   * proceed immediately), and closes the etcd client unless it was given to us.
   * Held locks' signals abort with LockLostError; pending acquisitions reject.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const sessions = await Promise.allSettled([...this.sessions.values()]);
    this.sessions.clear();
    await Promise.allSettled(sessions.map(s => (s.status === 'fulfilled' ? s.value.close() : undefined)));
    await this.mutex.settled();
    if (!this.options.client) this.etcd.close();
  }

  private async take<R extends Resources>(resource: R, options: AcquireOptions = {}, tryOnly: boolean): Promise<HeldLock<R>> {
    const waitTimeout = resolveWaitTimeout(options.waitTimeout ?? this.options.waitTimeout);
    const ttl = options.ttl === undefined ? this.options.ttl : resolveTtl(options.ttl);
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
      throw new InvalidLockArgumentError('signal', 'expected an AbortSignal');
    }
    const tryNow = tryOnly || waitTimeout === 0;
    // Try-only never waits; each of its requests is bounded by requestTimeout instead.
    const mutexOptions = { waitTimeoutMs: tryNow ? Infinity : waitTimeout, tryOnly: tryNow, signal: options.signal };
    if (typeof resource === 'string' || !Array.isArray(resource)) {
      assertResourceName(resource);
      const session = await this.session(ttl, this.options.dialTimeout);
      return (await this.mutex.acquire(session, resource as string, mutexOptions)) as HeldLock<R>;
    }
    return (await this.takeAll(resource, ttl, mutexOptions)) as HeldLock<R>;
  }

  /** Takes several locks in the order of their keys, so every caller queues in the same order. */
  private async takeAll(resources: readonly string[], ttl: number, options: { waitTimeoutMs: number; tryOnly: boolean; signal?: AbortSignal }): Promise<LockSet> {
    if (resources.length === 0) throw new InvalidLockArgumentError('resource', 'the list of resources is empty');
    resources.forEach(assertResourceName);
    const ordered = [...new Set(resources)].sort((a, b) => Buffer.compare(Buffer.from(encodeResource(a)), Buffer.from(encodeResource(b))));
    const deadline = performance.now() + options.waitTimeoutMs;
    const held: LockHandle[] = [];
    try {
      for (const resource of ordered) {
        const session = await this.session(ttl, this.options.dialTimeout);
        const waitTimeoutMs = Math.max(0, deadline - performance.now());
        held.push(await this.mutex.acquire(session, resource, { ...options, waitTimeoutMs }));
      }
      return new LockSet(held);
    } catch (err) {
      await Promise.all(held.map(h => h.release()));
      throw err;
    }
  }

  /** The live session for a TTL, opening a fresh one after a loss. */
  private async session(ttl: number, timeoutMs: number): Promise<Session> {
    if (this.closed) throw new LockClientClosedError();
    const current = this.resolvedSessions.get(ttl);
    if (current && !current.alive) this.forget(ttl, current);
    let pending = this.sessions.get(ttl);
    if (!pending) {
      pending = Session.open(this.etcd, { ttl, requestTimeoutMs: this.options.requestTimeout, logger: this.options.logger }, timeoutMs);
      this.sessions.set(ttl, pending);
      pending.then(
        session => {
          if (this.sessions.get(ttl) !== pending) return;
          this.resolvedSessions.set(ttl, session);
          session.onEnd(() => this.forget(ttl, session));
        },
        () => {
          if (this.sessions.get(ttl) === pending) this.sessions.delete(ttl);
        },
      );
    }
    const session = await pending;
    if (this.closed) {
      await session.close();
      throw new LockClientClosedError();
    }
    return session;
  }

  private forget(ttl: number, session: Session): void {
    if (this.resolvedSessions.get(ttl) !== session) return;
    this.resolvedSessions.delete(ttl);
    this.sessions.delete(ttl);
  }
}

/**
 * etcd3's default breaker shuts a host out for 5 s after three failures; with one endpoint that
 * is a 5 s outage after any blip, longer than short lease TTLs. Half-open after 500 ms instead.
 */
function createEtcdClient(options: ResolvedLockOptions): Etcd3 {
  return new Etcd3({
    hosts: options.hosts,
    auth: options.auth,
    credentials: options.credentials,
    faultHandling: {
      host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 500, breaker: new ConsecutiveBreaker(3) }),
    },
    ...options.etcdOptions,
  });
}

