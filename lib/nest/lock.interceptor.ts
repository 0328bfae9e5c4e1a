import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Observable } from 'rxjs';
import { LOCKED_METADATA } from './etcd-lock.constants.js';
import { lockScope } from './held-locks.js';
import { lockedObservable } from './locked-observable.js';
import { keySource, resolveResources } from './lock-key.js';
import type { LockedDefinition } from './locked-options.js';
import { LockService } from './lock.service.js';

/**
 * Runs a `@Locked` controller handler under its lock: acquired before the handler runs, held
 * while the handler's Observable is live, released on complete, error or unsubscribe (client
 * gone); loss of the lock errors the handler's stream with `LockLostError`.
 */
@Injectable()
export class LockInterceptor implements NestInterceptor {
  constructor(
    private readonly reflector: Reflector,
    private readonly locks: LockService,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const definition = this.reflector.get<LockedDefinition | undefined>(LOCKED_METADATA, context.getHandler());
    if (!definition) return next.handle();
    return lockedObservable(
      async giveUp => {
        const resources = resolveResources(definition.key, keySource(context), [context]);
        return this.locks.enter(resources, { ...definition.options, signal: giveUp });
      },
      // next.handle() binds the handler to the async context it is called in: ours, marked with
      // the definition so that @Locked's wrapper (wherever other decorators put it) does not lock again.
      entered => lockScope.run({ ...entered.scope, intercepted: definition }, () => next.handle()),
    );
  }
}
