import { Logger, Module, type Provider } from '@nestjs/common';
import { APP_FILTER, DiscoveryModule, HttpAdapterHost } from '@nestjs/core';
import { EtcdLockClient, type LockLogger } from '../core/index.js';
import { silentLogger } from '../core/logger.js';
import { ETCD_LOCK_CLIENT } from './etcd-lock.constants.js';
import type { EtcdLockModuleOptions } from './etcd-lock-module-options.js';
import { ConfigurableEtcdLockModule, ETCD_LOCK_MODULE_OPTIONS } from './etcd-lock.module-definition.js';
import { DisabledLockExceptionFilter, LockExceptionFilter } from './lock-exception.filter.js';
import { LockInterceptor } from './lock.interceptor.js';
import { LockService } from './lock.service.js';
import { LockedProvidersBinder } from './locked-providers.binder.js';

const clientProvider: Provider = {
  provide: ETCD_LOCK_CLIENT,
  inject: [ETCD_LOCK_MODULE_OPTIONS],
  useFactory: async (options: EtcdLockModuleOptions) => {
    const { lazyConnect, httpExceptionFilter, logger, ...clientOptions } = options ?? {};
    const client = new EtcdLockClient({ ...clientOptions, logger: resolveLogger(logger) });
    if (!lazyConnect) {
      try {
        await client.connect();
      } catch (err) {
        await client.close();
        throw err;
      }
    }
    return client;
  },
};

const filterProvider: Provider = {
  provide: APP_FILTER,
  inject: [ETCD_LOCK_MODULE_OPTIONS, HttpAdapterHost],
  useFactory: (options: EtcdLockModuleOptions, adapterHost: HttpAdapterHost) =>
    options?.httpExceptionFilter === false ? new DisabledLockExceptionFilter() : new LockExceptionFilter(adapterHost),
};

/**
 * Distributed locks on etcd for a NestJS application: one etcd client and one lease per
 * application, `LockService` to inject, and `@Locked` for handlers and provider methods.
 *
 * ```ts
 * EtcdLockModule.forRoot({ hosts: 'http://127.0.0.1:2379', prefix: 'locks/', ttl: 10 })
 * ```
 * On shutdown (`app.enableShutdownHooks()` or `app.close()`) it revokes its lease, deleting all
 * its keys at once so that waiters elsewhere proceed immediately.
 */
@Module({
  imports: [DiscoveryModule],
  providers: [clientProvider, filterProvider, LockService, LockInterceptor, LockedProvidersBinder],
  exports: [ETCD_LOCK_CLIENT, LockService, LockInterceptor],
})
export class EtcdLockModule extends ConfigurableEtcdLockModule {}

function resolveLogger(logger: LockLogger | false | undefined): LockLogger {
  if (logger === false) return silentLogger;
  if (logger) return logger;
  const nest = new Logger('EtcdLockModule');
  return { warn: message => nest.warn(message), error: message => nest.error(message) };
}
