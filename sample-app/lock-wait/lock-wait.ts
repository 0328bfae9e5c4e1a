import { Injectable, createParamDecorator, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import type { Observable } from 'rxjs';

const ARRIVED_AT = Symbol('lock-wait:arrived-at');

type StampedRequest = { [ARRIVED_AT]?: number };

/**
 * Stamps each request as it reaches the interceptor chain. Registered globally, it runs before
 * the route's `@Locked` interceptor, so the stamp is taken before the lock is requested.
 */
@Injectable()
export class LockWaitClock implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    context.switchToHttp().getRequest<StampedRequest>()[ARRIVED_AT] = performance.now();
    return next.handle();
  }
}

/**
 * Injects how long this request waited for its `@Locked` lock, in ms. Nest resolves handler
 * parameters only once the interceptors let the call through, that is, once the lock is held.
 */
export const LockWaitMs = createParamDecorator((_: unknown, context: ExecutionContext): number => {
  const arrivedAt = context.switchToHttp().getRequest<StampedRequest>()[ARRIVED_AT];
  return arrivedAt === undefined ? 0 : roundMs(performance.now() - arrivedAt);
});

/** Milliseconds to 0.1 ms: finer is noise, coarser hides the uncontended case. */
export function roundMs(ms: number): number {
  return Math.round(ms * 10) / 10;
}
