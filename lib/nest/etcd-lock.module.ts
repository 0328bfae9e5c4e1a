import { Logger, Module, type Provider } from '@nestjs/common';
import { APP_FILTER, HttpAdapterHost } from '@nestjs/core';
import { EtcdLockClient, type LockLogger, silentLogger } from '../core/index.js';
import { ETCD_LOCK_CLIENT } from './etcd-lock.constants.js';
import type { EtcdLockModuleOptions } from './etcd-lock-module-options.js';
import { ConfigurableEtcdLockModule, ETCD_LOCK_MODULE_OPTIONS } from './etcd-lock.module-definition.js';
import { DisabledLockExceptionFilter, LockExceptionFilter } from './lock-exception.filter.js';
import { lockLayerProviders } from './etcd-lock.providers.js';
import { ELECTION_OPTIONS, resolveElectionOptions } from './election-options.js';
import { electionProviders } from './election.providers.js';
import { ElectionService } from './election.service.js';

const clientProvider: Provider = {
  provide: ETCD_LOCK_CLIENT,
  inject: [ETCD_LOCK_MODULE_OPTIONS],
  useFactory: async (options: EtcdLockModuleOptions) => {
    const { lazyConnect, httpExceptionFilter, logger, debug, electionPrefix, election, ...clientOptions } = options ?? {};
    const client = new EtcdLockClient({ ...clientOptions, logger: resolveLogger(logger, debug === true) });
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

const electionOptionsProvider: Provider = {
  provide: ELECTION_OPTIONS,
  inject: [ETCD_LOCK_MODULE_OPTIONS],
  useFactory: (options: EtcdLockModuleOptions) => resolveElectionOptions(options),
};

/**
 * Distributed locks on etcd for a NestJS application: one etcd client and one lease per
 * application, `LockService` to inject, and `@Locked` for handlers and provider methods; leader
 * elections on the same lease through `ElectionService` and `@LeaderOnly`.
 *
 * ```ts
 * EtcdLockModule.forRoot({ hosts: 'http://127.0.0.1:2379', prefix: 'locks/', ttl: 10 })
 * ```
 * On shutdown (`app.enableShutdownHooks()` or `app.close()`) it revokes its lease, deleting all
 * its keys at once so that waiters elsewhere proceed immediately.
 */
@Module({
  providers: [clientProvider, filterProvider, ...lockLayerProviders, electionOptionsProvider, ...electionProviders],
  exports: [ETCD_LOCK_CLIENT, ...lockLayerProviders, ElectionService],
})
export class EtcdLockModule extends ConfigurableEtcdLockModule {}

/** Debug lines only when asked for: Nest prints debug by default, and a lock logs on every request. */
function resolveLogger(logger: LockLogger | false | undefined, debug: boolean): LockLogger {
  if (logger === false) return silentLogger;
  const target = logger || new Logger('EtcdLockModule');
  return {
    warn: message => target.warn(message),
    error: message => target.error(message),
    debug: debug && target.debug ? message => target.debug!(message) : undefined,
  };
}
