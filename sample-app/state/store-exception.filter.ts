import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { StaleFencingTokenError, StoreContentionError, StoreUnavailableError } from './store-errors.js';

type StoreError = StaleFencingTokenError | StoreContentionError | StoreUnavailableError;

/**
 * Answers the store's errors the way the lock library answers its own: a refused write is a 409
 * Conflict, an unreachable etcd a 503 with Retry-After (the write may or may not have happened).
 */
@Catch(StaleFencingTokenError, StoreContentionError, StoreUnavailableError)
export class StoreExceptionFilter implements ExceptionFilter<StoreError> {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(error: StoreError, host: ArgumentsHost): void {
    const { httpAdapter } = this.adapterHost;
    const response = host.switchToHttp().getResponse();
    // A request whose lock was lost has been answered already (503); the store logged the refusal.
    if (httpAdapter.isHeadersSent(response)) return;
    const status = error instanceof StoreUnavailableError ? 503 : 409;
    if (status === 503) httpAdapter.setHeader(response, 'Retry-After', '1');
    httpAdapter.reply(response, { statusCode: status, error: error.name, message: error.message }, status);
  }
}
