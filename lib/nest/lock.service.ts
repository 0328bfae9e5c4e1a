import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Observable } from 'rxjs';
import {
  LockClient,
  type AcquireOptions,
  type LockHandle,
  type LockSet,
  type HeldLock,
  type LockEvent,
  type LockInspection,
  type SessionStatus,
} from '../core/index.js';
import { ETCD_LOCK_CLIENT } from './etcd-lock.constants.js';
import { enterLock, runEntered, type EnteredLock, type LockRunOptions } from './entered-lock.js';
import { lockScope } from './held-locks.js';

export type { LockRunOptions } from './entered-lock.js';

type Resources = string | readonly string[];

/**
 * Distributed locks for the application, on the module's single etcd client and lease.
 * Inject it anywhere. `withLock` (and `@Locked`) re-enter: a call made while its call chain
 * holds a resource on this service's client runs without waiting, and the lock is released when
 * the last of those holders finishes. A lock that is released, being released or lost is never
 * lent, nor one of another client.
 */
@Injectable()
export class LockService implements OnApplicationShutdown {
  /**
   * Every lock event of this application (waiting, acquired with `waitedMs`, released with
   * `heldMs`, lost, failed): feed metrics from it. Hot: subscribers see events from then on.
   */
  readonly events$: Observable<LockEvent>;

  constructor(@Inject(ETCD_LOCK_CLIENT) readonly client: LockClient) {
    this.events$ = new Observable<LockEvent>(subscriber => this.client.events.subscribe(event => subscriber.next(event)));
  }

  /** Waits for the lock(s) and returns them held; you must `release()` them. Not re-entrant. */
  acquire<R extends Resources>(resource: R, options?: AcquireOptions): Promise<HeldLock<R>> {
    return this.client.acquire(resource, options);
  }

  /** Takes the lock(s) only if free now; `null` when held. Not re-entrant. */
  tryAcquire<R extends Resources>(resource: R, options?: Omit<AcquireOptions, 'waitTimeout'>): Promise<HeldLock<R> | null> {
    return this.client.tryAcquire(resource, options);
  }

  /**
   * Runs `fn` holding the lock(s), released when `fn` settles and every nested call that
   * re-entered them has finished. `fn` receives the held lock (`fencingToken`, `signal`).
   * Resolves only if the lock was held throughout; rejects with `LockLostError` as soon as the
   * lock is known lost, or when `fn` settles after the lease's deadline passed.
   */
  withLock<R extends Resources, T>(resource: R, fn: (lock: HeldLock<R>) => T | Promise<T>, options?: LockRunOptions): Promise<T> {
    return this.enter(resource, options).then(entered => runEntered(entered, () => fn(entered.lock as HeldLock<R>)));
  }

  /**
   * The lock held by the innermost `withLock` / `@Locked` of this service around the current
   * call, if any, and only while it is held (not after its section ended).
   */
  current(): LockHandle | LockSet | undefined {
    const lock = lockScope.getStore()?.chains.get(this.client)?.current;
    if (!lock) return undefined;
    const handles = 'handles' in lock ? lock.handles : [lock];
    return handles.some(handle => handle.released) ? undefined : lock;
  }

  /** Who holds `resource` now and who waits for it, in grant order (read from etcd). */
  inspect(resource: string): Promise<LockInspection> {
    return this.client.inspect(resource);
  }

  /** The state of the module's lease: for health checks. */
  status(): SessionStatus {
    return this.client.status();
  }

  /** @internal Takes what the current call chain does not hold yet on this client, and borrows the rest. */
  enter(resources: Resources, options?: LockRunOptions): Promise<EnteredLock> {
    return enterLock(this.client, resources, options);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.client.close();
  }
}
