import 'reflect-metadata';
import { Inject, SetMetadata, UseInterceptors } from '@nestjs/common';
import { Observable, isObservable } from 'rxjs';
import { LOCKED_METADATA } from './etcd-lock.constants.js';
import { copyMethodMetadata } from './copy-method-metadata.js';
import { runEntered, type EnteredLock } from './entered-lock.js';
import { lockScope } from './held-locks.js';
import { LockInterceptor } from './lock.interceptor.js';
import { LockServiceMissingError } from './lock-service-missing.error.js';
import { LockService } from './lock.service.js';
import { resolveResources, type LockKey } from './lock-key.js';
import { defineLocked, type LockedDefinition, type LockedOptions } from './locked-options.js';
import { lockedObservable } from './locked-observable.js';

/** The property under which Nest injects the LockService into instances of classes with `@Locked` methods. */
const LOCK_SERVICE = Symbol('LockService, injected for @Locked');
const injected = new WeakSet<object>();

/**
 * Runs the method under a distributed lock.
 *
 * On a controller handler the key template reads the request: `@Locked('order:{params.id}')`
 * (also `query`, `body`, `headers`, `user`; `payload` for RPC and WebSocket). The lock is held
 * while the handler's Promise or Observable is live, and its loss errors the stream with
 * `LockLostError`.
 *
 * On a provider method it reads the arguments: `@Locked('job:{0.id}')`, or a function
 * `(...args) => key`. The method gets the `LockService` of its module by property injection, so
 * its class must be a provider of a module that imports `EtcdLockModule` (else bootstrap fails
 * naming it). It returns an Observable, locked while subscribed, if declared to return one
 * (`design:returntype` Observable); otherwise a Promise, which resolves only if the lock was held
 * throughout. If that Promise's value turns out to be an Observable (no declared return type, or no
 * decorator metadata), it resolves to a stream that takes the lock again while subscribed.
 *
 * Nested locked calls on a resource the call chain holds run without waiting, while it is held;
 * the lock is released when the last of them finishes. A missing or empty template value is an
 * `InvalidLockArgumentError` (HTTP 400), never a lock on `order:undefined`.
 */
export function Locked(key: LockKey, options?: LockedOptions): MethodDecorator {
  const definition = defineLocked(key, options);
  return (target, propertyKey, descriptor: PropertyDescriptor) => {
    const original = descriptor.value as (...args: unknown[]) => unknown;
    const returnsObservable = isObservableClass(Reflect.getMetadata('design:returntype', target, propertyKey));
    const method = `${target.constructor.name}.${String(propertyKey)}`;
    injectLockService(target);
    const locked = function (this: unknown, ...args: unknown[]): unknown {
      const scope = lockScope.getStore();
      if (scope?.intercepted === definition) {
        // Called by Nest's router inside LockInterceptor, which holds the lock already.
        return lockScope.run({ ...scope, intercepted: undefined }, () => original.apply(this, args));
      }
      const enter = async (signal?: AbortSignal) =>
        serviceOf(this, method).enter(resolveResources(definition.key, args, args), { ...definition.options, signal });
      const call = (entered: EnteredLock) => lockScope.run(entered.scope, () => original.apply(this, args));
      if (returnsObservable) return lockedObservable(enter, entered => call(entered) as Observable<unknown>);
      return enter()
        .then(entered => runEntered(entered, () => call(entered)))
        .then(result => (isObservable(result) ? lockedObservable(enter, () => result) : result));
    };
    copyMethodMetadata(original, locked);
    descriptor.value = locked;
    SetMetadata(LOCKED_METADATA, definition satisfies LockedDefinition)(target, propertyKey, descriptor);
    UseInterceptors(LockInterceptor)(target, propertyKey, descriptor);
    return descriptor;
  };
}

/** Asks Nest to inject the LockService of the class's module (as nestjs-cls's @Transactional does). */
function injectLockService(prototype: object): void {
  if (injected.has(prototype)) return;
  injected.add(prototype);
  Inject(LockService)(prototype, LOCK_SERVICE);
}

function serviceOf(instance: unknown, method: string): LockService {
  const service = (instance as Record<symbol, LockService> | undefined)?.[LOCK_SERVICE];
  if (!service) throw new LockServiceMissingError(method);
  return service;
}

/**
 * By shape, not identity: a CommonJS app and this ESM library may load two copies of rxjs, so
 * the app's `Observable` class need not be ours.
 */
function isObservableClass(type: unknown): boolean {
  return (
    typeof type === 'function' && (type === Observable || (type.name === 'Observable' && typeof type.prototype?.subscribe === 'function'))
  );
}
