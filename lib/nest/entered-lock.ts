import {
  type AcquireOptions,
  compareResources,
  LockBusyError,
  type LockClient,
  type LockHandle,
  type LockMode,
  LockSet,
  LockUpgradeError,
  resolveLockMode,
  runWhileHeld,
  sameMode,
} from '../core/index.js';
import { lockScope, SharedHold, type LockScope } from './held-locks.js';
import { LockOrderError } from './lock-order.error.js';

/** Options of `withLock` and `@Locked`. */
export interface LockRunOptions extends AcquireOptions {
  /** Fail at once with `LockBusyError` when the lock is held, instead of waiting. */
  tryOnly?: boolean;
}

/** A lock entered by one call: taken now, or borrowed from an outer call that holds it. */
export interface EnteredLock {
  lock: LockHandle | LockSet;
  /** The async context the call's section runs in. */
  scope: LockScope;
  /**
   * Ends this call's section: leaves what it borrowed, and resolves once every nested call that
   * borrowed what it took has left too. Idempotent.
   */
  leave(): Promise<void>;
  /** `leave()`, then releases what this call took. Idempotent, never rejects. */
  exit(): Promise<void>;
}

/**
 * Takes what the current call chain does not hold on `client`, and borrows the rest. One resource
 * gives a LockHandle, a list a LockSet. A lock that is released, being released or lost is never
 * borrowed. Every lock waited for is ordered after every lock the chain holds, so nested calls
 * keep the deadlock-free order of lists; one ordered before is taken only if free (else
 * {@link LockOrderError}). A held exclusive lock lends itself to a shared request; any other
 * change of mode on a held resource (shared to exclusive, a semaphore to a lock) is refused with
 * {@link LockUpgradeError}: waiting for it would deadlock on the chain's own key.
 */
export async function enterLock(
  client: LockClient,
  resources: string | readonly string[],
  options: LockRunOptions = {},
): Promise<EnteredLock> {
  const outer = lockScope.getStore();
  const chain = outer?.chains.get(client);
  const wanted = typeof resources === 'string' ? [resources] : [...new Set(resources)];
  const borrowed: SharedHold[] = [];
  const mode = resolveLockMode(options.shared, options.permits);
  try {
    for (const resource of wanted) {
      const hold = chain?.holds.get(resource);
      if (hold?.held && !lends(hold.handle.mode, mode)) throw new LockUpgradeError(resource, hold.handle.mode, mode);
      if (hold?.join()) borrowed.push(hold);
    }
  } catch (err) {
    for (const hold of borrowed) hold.leave();
    throw err;
  }
  const holds = new Map(chain?.holds);
  let taken: SharedHold[];
  try {
    const missing = wanted.filter(resource => !borrowed.some(hold => hold.handle.resource === resource));
    const held = [...holds.values()].filter(hold => hold.held).map(hold => hold.handle.resource);
    taken = (await takeInOrder(client, missing, held, options)).map(handle => new SharedHold(handle));
  } catch (err) {
    for (const hold of borrowed) hold.leave();
    throw err;
  }
  for (const hold of taken) holds.set(hold.handle.resource, hold);
  const handles = wanted.map(resource => holds.get(resource)!.handle);
  const lock = typeof resources === 'string' ? handles[0] : new LockSet(handles);
  let left: Promise<void> | undefined;
  const leave = () =>
    (left ??= (async () => {
      for (const hold of [...borrowed, ...taken]) hold.leave();
      await Promise.all(taken.map(hold => hold.idle));
    })());
  let exited: Promise<void> | undefined;
  const exit = () =>
    (exited ??= leave().then(async () => {
      await Promise.all(taken.map(hold => hold.handle.release()));
    }));
  const chains = new Map(outer?.chains).set(client, { holds, current: lock });
  return { lock, scope: { chains, current: lock }, leave, exit };
}

/** Whether a lock held as `held` covers a nested request for `wanted` on the same resource. */
function lends(held: LockMode, wanted: LockMode): boolean {
  return sameMode(held, wanted) || (held.kind === 'exclusive' && wanted.kind === 'shared');
}

/**
 * Runs `fn` in the entered lock's scope. Resolves like `fn` only if the lock was held throughout:
 * until `fn` settled and every nested holder that borrowed it had left.
 */
export function runEntered<T>(entered: EnteredLock, fn: () => T | Promise<T>): Promise<T> {
  return runWhileHeld(
    entered.lock,
    () =>
      lockScope.run(entered.scope, async () => {
        try {
          return await fn();
        } finally {
          await entered.leave();
        }
      }),
    entered.exit,
  );
}

/**
 * Takes `missing`: those ordered before the last lock the chain holds without waiting (waiting
 * for them could close a cycle with another chain), then the rest with the caller's options.
 */
async function takeInOrder(client: LockClient, missing: string[], held: string[], options: LockRunOptions): Promise<LockHandle[]> {
  if (missing.length === 0) return [];
  const { tryOnly, ...acquireOptions } = options;
  const last = held.sort(compareResources).at(-1);
  const early = last === undefined ? [] : missing.filter(resource => compareResources(resource, last) < 0);
  const late = missing.filter(resource => !early.includes(resource));
  const handles: LockHandle[] = [];
  try {
    if (early.length > 0) {
      try {
        handles.push(...(await take(client, early, { ...acquireOptions, waitTimeout: 0 })));
      } catch (err) {
        throw err instanceof LockBusyError ? new LockOrderError(err.resource, last!) : err;
      }
    }
    if (late.length > 0) handles.push(...(await take(client, late, tryOnly ? { ...acquireOptions, waitTimeout: 0 } : acquireOptions)));
    return handles;
  } catch (err) {
    await Promise.all(handles.map(handle => handle.release()));
    throw err;
  }
}

async function take(client: LockClient, resources: string[], options: AcquireOptions): Promise<LockHandle[]> {
  const lock = await client.acquire(resources.length === 1 ? resources[0] : resources, options);
  return lock instanceof LockSet ? [...lock.handles] : [lock];
}
