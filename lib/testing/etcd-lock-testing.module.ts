import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { ETCD_LOCK_CLIENT } from '../nest/etcd-lock.constants.js';
import { LockExceptionFilter } from '../nest/lock-exception.filter.js';
import { lockLayerProviders } from '../nest/etcd-lock.providers.js';
import { InMemoryLockClient, type InMemoryLockClientOptions } from './in-memory-lock-client.js';

/**
 * `EtcdLockModule` without etcd, for test modules you compose yourself: the same `LockService`,
 * `@Locked` and HTTP error mapping over an {@link InMemoryLockClient} (inject it to make locks be
 * lost on purpose). To test an application module that imports `EtcdLockModule.forRoot()`,
 * replace its client instead:
 *
 * ```ts
 * Test.createTestingModule({ imports: [AppModule] })
 *   .overrideProvider(ETCD_LOCK_CLIENT).useValue(new InMemoryLockClient())
 * ```
 */
@Module({})
export class EtcdLockTestingModule {
  static forRoot(options: InMemoryLockClientOptions & { isGlobal?: boolean } = {}): DynamicModule {
    const { isGlobal, ...clientOptions } = options;
    return {
      module: EtcdLockTestingModule,
      global: isGlobal,
      providers: [
        { provide: InMemoryLockClient, useFactory: () => new InMemoryLockClient(clientOptions) },
        { provide: ETCD_LOCK_CLIENT, useExisting: InMemoryLockClient },
        { provide: APP_FILTER, useClass: LockExceptionFilter },
        ...lockLayerProviders,
      ],
      exports: [ETCD_LOCK_CLIENT, InMemoryLockClient, ...lockLayerProviders],
    };
  }
}
