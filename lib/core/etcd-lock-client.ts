import { ConsecutiveBreaker, circuitBreaker, handleWhen } from 'cockatiel';
import { Etcd3, EtcdLeaseInvalidError, isRecoverableError } from 'etcd3';
import { backoffPauses } from './backoff.js';
import { LockClientClosedError, LockLostError } from './errors.js';
import { toLockError } from './etcd-errors.js';
import { FairMutex } from './fair-mutex.js';
import type { LockHandle } from './handle.js';
import { resourcePrefix } from './keys.js';
import { LockClient, type AcquireOneOptions, type SessionStatus } from './lock-client.js';
import type { LockInspection } from './lock-inspection.js';
import { resolveLockOptions, type LockClientOptions, type ResolvedLockOptions } from './options.js';
import { QueueStore } from './queue-store.js';
import { splitQueue } from './queue-turn.js';
import { Session } from './session.js';

/**
 * Distributed locks on etcd: fair (FIFO by create revision), bound to one renewed lease, with a
 * fencing token per grant and an AbortSignal that fires when the lock is lost. Framework-free;
 * the NestJS module wraps one instance of it.
 */
export class EtcdLockClient extends LockClient {
  /** The underlying etcd3 client. */
  readonly etcd: Etcd3;
  private readonly store: QueueStore;
  private readonly mutex: FairMutex;
  /** One session per lease TTL in use (pending or live); nearly always just the default one. */
  private readonly sessions = new Map<number, Promise<Session>>();
  /** The latest session granted per TTL, kept after its loss so that status() reports it. */
  private readonly resolvedSessions = new Map<number, Session>();
  /** The entry of `sessions` each session was granted through. */
  private readonly grantedBy = new WeakMap<Session, Promise<Session>>();
  private closed = false;
  /** Rejects when close() is called, so that no wait for a lease grant outlives the client. */
  private readonly whenClosed: Promise<never>;
  private rejectWhenClosed!: (err: Error) => void;

  constructor(options: LockClientOptions = {}) {
    const resolved = resolveLockOptions(options);
    super(resolved);
    this.etcd = resolved.client ?? createEtcdClient(resolved);
    this.store = new QueueStore(this.etcd, resolved.requestTimeout);
    this.mutex = new FairMutex(this.etcd, this.store, resolved.prefix, resolved.logger, this.events);
    this.whenClosed = new Promise<never>((_, reject) => (this.rejectWhenClosed = reject));
    this.whenClosed.catch(() => undefined);
  }

  async connect(): Promise<void> {
    if (this.resolvedSessions.get(this.options.ttl)?.alive) return;
    await this.session(this.options.ttl, this.options.dialTimeout);
    // etcd 3.4 grants leases without checking credentials: a read proves them at startup.
    await this.ping(this.options.dialTimeout);
  }

  /**
   * The state of the lease for a TTL. After a loss it stays `lost` until a fresh lease is granted
   * (the client asks for one at once, and again with backoff while etcd does not answer), then
   * `alive`.
   */
  status(ttl = this.options.ttl): SessionStatus {
    if (this.closed) return { state: 'closed' };
    const session = this.resolvedSessions.get(ttl);
    if (!session) return { state: this.sessions.has(ttl) ? 'connecting' : 'idle' };
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

  async inspect(resource: string): Promise<LockInspection> {
    const prefix = resourcePrefix(this.options.prefix, resource);
    try {
      const { holders, waiters } = splitQueue(resource, prefix, await this.store.queue(prefix));
      return { resource, holder: holders[0], holders, waiters };
    } catch (err) {
      throw toLockError(err, `inspecting lock "${resource}"`);
    }
  }

  /**
   * Stops taking locks, revokes every lease (deleting all our keys at once, so waiters elsewhere
   * proceed immediately), and closes the etcd client unless it was given to us.
   * Held locks' signals abort with LockLostError; pending acquisitions reject with
   * LockClientClosedError. Returns within `requestTimeout` whatever etcd does: a revoke that has
   * not answered by then is abandoned (the lease then expires after its TTL).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.rejectWhenClosed(new LockClientClosedError());
    this.mutex.close();
    const releaseAll = async () => {
      const sessions = await Promise.allSettled([...this.sessions.values()]);
      this.sessions.clear();
      await Promise.allSettled(sessions.map(s => (s.status === 'fulfilled' ? s.value.close() : undefined)));
      await this.mutex.settled();
    };
    const gaveUp = await withinMs(releaseAll(), this.options.requestTimeout);
    if (gaveUp)
      this.options.logger.warn(
        `closing the lock client: etcd did not answer within ${this.options.requestTimeout} ms; leases left to expire`,
      );
    if (!this.options.client) this.etcd.close();
  }

  /**
   * The live session of the client's TTL (granting a fresh one after a loss): the lease that
   * elections and tick claims put their keys on, so one keepalive stream serves every key.
   * @internal For the library's own key layouts; its keys go when the lease is lost or the client closes.
   */
  leaseSession(): Promise<Session> {
    return this.session(this.options.ttl, this.options.dialTimeout);
  }

  /**
   * The queue core its locks wait in, for elections to wait in it too.
   * @internal For the library's own key layouts.
   */
  queueCore(): FairMutex {
    return this.mutex;
  }

  protected async acquireOne(resource: string, ttl: number, options: AcquireOneOptions): Promise<LockHandle> {
    const started = performance.now();
    const session = await this.session(ttl, this.options.dialTimeout);
    try {
      return await this.mutex.acquire(session, resource, options);
    } catch (err) {
      // Only the put that queues us names the lease: etcd no longer knew it (revoked, or expired
      // before our session noticed), so nothing was queued or held. The session is lost now;
      // queue once more on a fresh lease rather than fail an acquisition that never started.
      if (!(err instanceof LockLostError && err.cause instanceof EtcdLeaseInvalidError)) throw err;
      const fresh = await this.session(ttl, this.options.dialTimeout);
      return this.mutex.acquire(fresh, resource, { ...options, waitTimeoutMs: options.waitTimeoutMs - (performance.now() - started) });
    }
  }

  /** The live session for a TTL, opening a fresh one after a loss. */
  private async session(ttl: number, timeoutMs: number): Promise<Session> {
    if (this.closed) throw new LockClientClosedError();
    const current = this.resolvedSessions.get(ttl);
    if (current && !current.alive) this.forget(ttl, current);
    let pending = this.sessions.get(ttl);
    if (!pending) {
      const opening = Session.open(
        this.etcd,
        { ttl, requestTimeoutMs: this.options.requestTimeout, logger: this.options.logger },
        timeoutMs,
      );
      pending = opening;
      this.sessions.set(ttl, opening);
      opening.then(
        session => {
          // Granted after close() gave up waiting for it: stop renewing it (with the etcd client
          // closed too, the revoke fails and the lease expires after its TTL).
          if (this.closed) return void session.close().catch(() => undefined);
          if (this.sessions.get(ttl) !== opening) return;
          this.resolvedSessions.set(ttl, session);
          this.grantedBy.set(session, opening);
          session.onEnd(() => {
            this.forget(ttl, session);
            this.reopenAfterLoss(ttl);
          });
        },
        () => {
          if (this.sessions.get(ttl) === opening) this.sessions.delete(ttl);
        },
      );
    }
    const session = await Promise.race([pending, this.whenClosed]);
    if (this.closed) {
      await session.close();
      throw new LockClientClosedError();
    }
    return session;
  }

  /** Lets the next acquisition open a fresh lease; status() reports the lost one until then. */
  private forget(ttl: number, session: Session): void {
    if (this.sessions.get(ttl) === this.grantedBy.get(session)) this.sessions.delete(ttl);
  }

  /**
   * Grants a fresh lease after a loss without waiting for the next acquisition, so that status()
   * (and a health check built on it) recovers once etcd answers again, even in an application
   * that takes no lock until it is reported healthy.
   */
  private reopenAfterLoss(ttl: number, pauses = backoffPauses(REOPEN_RETRY)): void {
    if (this.closed || this.sessions.has(ttl)) return;
    this.session(ttl, this.options.dialTimeout).catch(() => {
      if (this.closed) return;
      const timer = setTimeout(() => this.reopenAfterLoss(ttl, pauses), pauses.next().value);
      timer.unref();
    });
  }
}

/** Pauses between the lease grants retried after a loss, while etcd does not answer. */
const REOPEN_RETRY = { firstMs: 250, maxMs: 5000 };

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

/** Waits for `work` at most `ms`; resolves true when it gave up waiting. */
async function withinMs(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>(resolve => {
    timer = setTimeout(() => resolve(true), ms);
  });
  try {
    return await Promise.race([
      work.then(
        () => false,
        () => false,
      ),
      timedOut,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
