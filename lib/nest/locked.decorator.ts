import 'reflect-metadata';
import { SetMetadata, UseInterceptors } from '@nestjs/common';
import { Observable } from 'rxjs';
import { runWhileHeld } from '../core/handle.js';
import { LOCKED_METADATA } from './etcd-lock.constants.js';
import { copyMethodMetadata } from './copy-method-metadata.js';
import { lockScope } from './lock-context.js';
import { LockInterceptor } from './lock.interceptor.js';
import { defineLocked, resolveResources, type LockKey, type LockedOptions } from './locked-definition.js';
import { lockedRuntime } from './locked-runtime.js';
import { lockedObservable } from './locked-observable.js';
import type { EnteredLock } from './lock.service.js';

/**
 * Runs the method under a distributed lock.
 *
 * On a controller handler the key template reads the request: `@Locked('order:{params.id}')`
 * (also `query`, `body`, `headers`, `user`; `payload` for RPC and WebSocket). The lock is held
 * while the handler's Promise or Observable is live, and its loss errors the stream with
 * `LockLostError`.
 *
 * On a provider method it reads the arguments: `@Locked('job:{0.id}')`, or a function
 * `(...args) => key`. The method then returns a Promise (an Observable if declared to return one).
 *
 * Nested locked calls on a resource the call chain already holds run without waiting; the lock is
 * released when the outermost holder finishes. A missing or empty template value is an
 * `InvalidLockArgumentError` (HTTP 400), never a lock on `order:undefined`.
 */
export function Locked(key: LockKey, options?: LockedOptions): MethodDecorator {
  const definition = defineLocked(key, options);
  return (target, propertyKey, descriptor: PropertyDescriptor) => {
    const original = descriptor.value as (...args: unknown[]) => unknown;
    const returnsObservable = isObservableClass(Reflect.getMetadata('design:returntype', target, propertyKey));
    const locked = function (this: unknown, ...args: unknown[]): unknown {
      const scope = lockScope.getStore();
      if (scope?.interceptedHandler === locked) {
        // Called by Nest's router inside LockInterceptor, which holds the lock already.
        return lockScope.run({ ...scope, interceptedHandler: undefined }, () => original.apply(this, args));
      }
      const enter = async (signal?: AbortSignal) => {
        const resources = resolveResources(definition.key, args, args);
        return lockedRuntime.serviceFor(this).enter(resources, { ...definition.options, signal });
      };
      const call = (entered: EnteredLock) => lockScope.run(entered.scope, () => original.apply(this, args));
      if (returnsObservable) return lockedObservable(enter, entered => call(entered) as Observable<unknown>);
      return enter().then(entered => runWhileHeld(entered.lock, entered.taken, () => call(entered)));
    };
    copyMethodMetadata(original, locked);
    descriptor.value = locked;
    SetMetadata(LOCKED_METADATA, definition)(target, propertyKey, descriptor);
    UseInterceptors(LockInterceptor)(target, propertyKey, descriptor);
    return descriptor;
  };
}

/**
 * By shape, not identity: a CommonJS app and this ESM library may load two copies of rxjs, so
 * the app's `Observable` class need not be ours.
 */
function isObservableClass(type: unknown): boolean {
  return typeof type === 'function' && (type === Observable || (type.name === 'Observable' && typeof type.prototype?.subscribe === 'function'));
}
