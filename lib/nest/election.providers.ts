import type { Provider } from '@nestjs/common';
import { EtcdElections, EtcdLockClient, type LockClient } from '../core/index.js';
import { InMemoryElections } from '../testing/in-memory-elections.js';
import { ETCD_LOCK_CLIENT } from './etcd-lock.constants.js';
import { ELECTION_OPTIONS, ELECTIONS, type ResolvedElectionOptions } from './election-options.js';
import { ElectionService } from './election.service.js';

/**
 * Elections over whatever client ETCD_LOCK_CLIENT provides: on its etcd and lease, or in memory
 * when a test replaced it with the in-memory client.
 */
export const electionsProvider: Provider = {
  provide: ELECTIONS,
  inject: [ETCD_LOCK_CLIENT, ELECTION_OPTIONS],
  useFactory: (client: LockClient, options: ResolvedElectionOptions) =>
    client instanceof EtcdLockClient
      ? new EtcdElections(client, options.prefix)
      : new InMemoryElections(undefined, { prefix: options.prefix, events: client.events, logger: client.options.logger }),
};

export const electionProviders = [electionsProvider, ElectionService];
