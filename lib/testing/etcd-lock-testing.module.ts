import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { ETCD_LOCK_CLIENT } from '../nest/etcd-lock.constants.js';
import { LockExceptionFilter } from '../nest/lock-exception.filter.js';
import { lockLayerProviders } from '../nest/etcd-lock.providers.js';
import { InMemoryLockClient, type InMemoryLockClientOptions } from './in-memory-lock-client.js';
import { ELECTION_OPTIONS, ELECTIONS, resolveElectionOptions, type ElectionModuleOptions } from '../nest/election-options.js';
import { ElectionService } from '../nest/election.service.js';
import { InMemoryElectionLedger, InMemoryElections } from './in-memory-elections.js';

/** Options of `EtcdLockTestingModule.forRoot()`. */
export type EtcdLockTestingModuleOptions = InMemoryLockClientOptions &
  ElectionModuleOptions & {
    isGlobal?: boolean;
    /** Share one ledger between several test applications to elect one leader among them. */
    electionLedger?: InMemoryElectionLedger;
  };

/**
 * `EtcdLockModule` without etcd, for test modules you compose yourself: the same `LockService`,
 * `@Locked` and HTTP error mapping over an {@link InMemoryLockClient} (inject it to make locks be
 * lost on purpose) and `ElectionService` / `@LeaderOnly` over {@link InMemoryElections} (inject
 * it to make this instance lose leadership). To test an application module that imports `EtcdLockModule.forRoot()`,
 * replace its client instead:
 *
 * ```ts
 * Test.createTestingModule({ imports: [AppModule] })
 *   .overrideProvider(ETCD_LOCK_CLIENT).useValue(new InMemoryLockClient())
 * ```
 */
@Module({})
export class EtcdLockTestingModule {
  static forRoot(options: EtcdLockTestingModuleOptions = {}): DynamicModule {
    const { isGlobal, electionPrefix, election, electionLedger, ...clientOptions } = options;
    const electionOptions = resolveElectionOptions({ electionPrefix, election });
    return {
      module: EtcdLockTestingModule,
      global: isGlobal,
      providers: [
        { provide: InMemoryLockClient, useFactory: () => new InMemoryLockClient(clientOptions) },
        { provide: ETCD_LOCK_CLIENT, useExisting: InMemoryLockClient },
        { provide: APP_FILTER, useClass: LockExceptionFilter },
        ...lockLayerProviders,
        { provide: ELECTION_OPTIONS, useValue: electionOptions },
        {
          provide: InMemoryElections,
          inject: [InMemoryLockClient],
          useFactory: (client: InMemoryLockClient) =>
            new InMemoryElections(electionLedger, { prefix: electionOptions.prefix, events: client.events, logger: client.options.logger }),
        },
        { provide: ELECTIONS, useExisting: InMemoryElections },
        ElectionService,
      ],
      exports: [ETCD_LOCK_CLIENT, InMemoryLockClient, ...lockLayerProviders, InMemoryElections, ElectionService],
    };
  }
}
