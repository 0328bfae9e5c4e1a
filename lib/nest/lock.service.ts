import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Observable } from 'rxjs';
import {
  LockClient,
  LockHandle,
  LockSet,
  type AcquireOptions,
  type HeldLock,
  type LockEvent,
  type LockInspection,
  type SessionStatus,
} from '../core/index.js';
import { runWhileHeld } from '../core/handle.js';
import { ETCD_LOCK_CLIENT } from './etcd-lock.constants.js';
import { lockScope, type LockScope } from './lock-context.js';

type Resources = string | readonly string[];

/** Options of `withLock` and `@Locked`. */
export interface LockRunOptions extends AcquireOptions {
  /** Fail at once with `LockBusyError` when the lock is held, instead of waiting. */
  tryOnly?: boolean;
}

/** A lock entered by the current call: taken now, or borrowed from an outer call that holds it. */
export interface EnteredLock {
  lock: LockHandle | LockSet;
  scope: LockScope;
  /** The locks this call took itself (it releases those, and only those). */
  taken: LockHandle[];
}

/**
 * Distributed locks for the application, on the module's single etcd client and lease.
 * Inject it anywhere. `withLock` (and `@Locked`) re-enter: a call chain that already holds a
 * resource runs a nested `withLock` on it without waiting, and the lock is released when the
 * outermost holder finishes.
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
   * Runs `fn` holding the lock(s), released when `fn` settles. `fn` receives the held lock
   * (`fencingToken`, `signal`). Rejects with `LockLostError` as soon as the lock is lost.
   */
  async withLock<R extends Resources, T>(resource: R, fn: (lock: HeldLock<R>) => T | Promise<T>, options?: LockRunOptions): Promise<T> {
    const entered = await this.enter(resource, options);
    const lock = entered.lock as HeldLock<R>;
    return runWhileHeld(lock, entered.taken, () => lockScope.run(entered.scope, () => fn(lock)));
  }

  /** The lock held by the innermost `withLock` / `@Locked` around the current call, if any. */
  current(): LockHandle | LockSet | undefined {
    return lockScope.getStore()?.current;
  }

  /** Who holds `resource` now and who waits for it, in grant order (read from etcd). */
  inspect(resource: string): Promise<LockInspection> {
    return this.client.inspect(resource);
  }

  /** The state of the module's lease: for health checks. */
  status(): SessionStatus {
    return this.client.status();
  }

  /**
   * @internal Takes what the current call chain does not hold yet, and borrows the rest. One
   * resource gives a LockHandle, a list a LockSet.
   */
  async enter(resources: Resources, options: LockRunOptions = {}): Promise<EnteredLock> {
    const outer = lockScope.getStore();
    const locks = new Map(outer?.locks);
    const wanted = typeof resources === 'string' ? [resources] : [...new Set(resources)];
    for (const resource of wanted) locks.get(resource)?.throwIfLost();
    const missing = wanted.filter(resource => !locks.has(resource));
    const { tryOnly, ...acquireOptions } = options;
    const taken: LockHandle[] = [];
    if (missing.length > 0) {
      const request = missing.length === 1 ? missing[0] : missing;
      const lock = await this.client.acquire(request, tryOnly ? { ...acquireOptions, waitTimeout: 0 } : acquireOptions);
      taken.push(...(lock instanceof LockSet ? lock.handles : [lock]));
      for (const handle of taken) locks.set(handle.resource, handle);
    }
    const handles = wanted.map(resource => locks.get(resource)!);
    const lock = typeof resources === 'string' ? handles[0] : new LockSet(handles);
    return { lock, scope: { locks, current: lock }, taken };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.client.close();
  }
}

