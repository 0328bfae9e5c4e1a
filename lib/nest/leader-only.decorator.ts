import 'reflect-metadata';
import { Inject } from '@nestjs/common';
import { LockError, assertElectionName } from '../core/index.js';
import { copyMethodMetadata } from './copy-method-metadata.js';
import { ElectionService } from './election.service.js';
import { lockScope, scopeWithCurrent } from './held-locks.js';
import { LockService } from './lock.service.js';

/** The properties under which Nest injects the services into instances of classes with `@LeaderOnly` methods. */
const ELECTION_SERVICE = Symbol('ElectionService, injected for @LeaderOnly');
const LOCK_SERVICE = Symbol('LockService, injected for @LeaderOnly');
const injected = new WeakSet<object>();

/**
 * Runs the method only on the instance that leads election `name` (default `'default'`, the one
 * the module option `election` campaigns in); elsewhere it returns `undefined` without running,
 * logging nothing above debug. Works on `@Cron`, `@Interval` and `@Timeout` methods (either
 * decorator order) and on plain provider methods.
 *
 * While it runs, `lockService.current()` and `@CurrentLock()` give the leadership's lock: pass its
 * `fencingToken` with leader-only writes and heed its `signal`, which aborts on loss. Leadership is
 * checked when the call starts; a run is not cut short by a loss, so long runs should heed the signal.
 *
 * Something must campaign in that election, or the method never runs: the module option
 * `election` does it for `'default'` (or its `name`); another name needs `ElectionService.campaign`.
 *
 * The class must be a provider of a module that imports `EtcdLockModule` (or
 * `EtcdLockTestingModule`): the `ElectionService` is injected into it as a property.
 */
export function LeaderOnly(name = 'default'): MethodDecorator {
  assertElectionName(name);
  return (target, propertyKey, descriptor: PropertyDescriptor) => {
    const original = descriptor.value as (...args: unknown[]) => unknown;
    const method = `${target.constructor.name}.${String(propertyKey)}`;
    if (typeof original !== 'function') throw new LockError(`@LeaderOnly on ${method}: it decorates something that is not a method`);
    injectServices(target);
    const leaderOnly = function (this: unknown, ...args: unknown[]): unknown {
      const { elections, locks } = servicesOf(this, method);
      const leadership = elections.leadership(name);
      if (!leadership) {
        elections.elections.logger.debug?.(`${method} skipped: this instance does not lead election "${name}"`);
        return undefined;
      }
      return lockScope.run(scopeWithCurrent(locks.client, leadership.lock), () => original.apply(this, args));
    };
    copyMethodMetadata(original, leaderOnly);
    descriptor.value = leaderOnly;
    return descriptor;
  };
}

function injectServices(prototype: object): void {
  if (injected.has(prototype)) return;
  injected.add(prototype);
  Inject(ElectionService)(prototype, ELECTION_SERVICE);
  Inject(LockService)(prototype, LOCK_SERVICE);
}

function servicesOf(instance: unknown, method: string): { elections: ElectionService; locks: LockService } {
  const bag = instance as Record<symbol, unknown> | undefined;
  const elections = bag?.[ELECTION_SERVICE] as ElectionService | undefined;
  const locks = bag?.[LOCK_SERVICE] as LockService | undefined;
  if (!elections || !locks) {
    throw new LockError(
      `@LeaderOnly method ${method} was called on an instance without an ElectionService: Nest injects it only into ` +
        'instances it creates from the class (a class provider in a module that imports EtcdLockModule)',
    );
  }
  return { elections, locks };
}
