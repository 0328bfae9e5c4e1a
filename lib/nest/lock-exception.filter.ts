import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { throwError, type Observable } from 'rxjs';
import { LockError } from '../core/index.js';
import { lockErrorToHttp } from './lock-http-status.js';

/**
 * Answers lock errors over HTTP as {@link lockErrorToHttp} says. Registered globally by
 * `EtcdLockModule` unless `httpExceptionFilter: false`; extend it and override `toHttp` to change
 * the mapping. In RPC and WebSocket contexts the error passes on untouched.
 */
@Catch(LockError)
export class LockExceptionFilter implements ExceptionFilter<LockError> {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(error: LockError, host: ArgumentsHost): void | Observable<never> {
    if (host.getType() !== 'http') return throwError(() => error);
    const { httpAdapter } = this.adapterHost;
    const response = host.switchToHttp().getResponse();
    if (httpAdapter.isHeadersSent(response)) {
      // A streaming handler lost its lock mid-response: all we can do is end it.
      httpAdapter.end(response);
      return;
    }
    const { status, retryAfter } = this.toHttp(error);
    if (retryAfter !== undefined) httpAdapter.setHeader(response, 'Retry-After', String(retryAfter));
    httpAdapter.reply(response, { statusCode: status, error: error.name, message: error.message }, status);
  }

  protected toHttp(error: LockError) {
    return lockErrorToHttp(error);
  }
}

/** Stands in for the filter when `httpExceptionFilter: false`: it catches nothing. */
class NeverThrown {}
@Catch(NeverThrown)
export class DisabledLockExceptionFilter implements ExceptionFilter {
  catch(): void {}
}
