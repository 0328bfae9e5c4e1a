import type { Provider } from '@nestjs/common';
import { EtcdElections, EtcdLockClient, LockError, type LockClient } from '../core/index.js';
import { InMemoryLockClient } from '../testing/in-memory-lock-client.js';
import { InMemoryElections } from '../testing/in-memory-elections.js';
import { ETCD_LOCK_CLIENT } from './etcd-lock.constants.js';
import { ELECTION_OPTIONS, ELECTIONS, type ResolvedElectionOptions } from './election-options.js';
import { ElectionService } from './election.service.js';

/**
 * Elections over whatever client ETCD_LOCK_CLIENT provides: on its etcd and lease, or in memory
 * when a test replaced it with the in-memory client. Any other client is refused: elections of
 * their own per instance would let every instance lead.
 */
export const electionsProvider: Provider = {
  provide: ELECTIONS,
  inject: [ETCD_LOCK_CLIENT, ELECTION_OPTIONS],
  useFactory: (client: LockClient, options: ResolvedElectionOptions) => {
    if (client instanceof EtcdLockClient) return new EtcdElections(client, options.prefix);
    if (client instanceof InMemoryLockClient) {
      return new InMemoryElections(undefined, { prefix: options.prefix, events: client.events, logger: client.options.logger });
    }
    throw new LockError(
      `elections need an EtcdLockClient or the in-memory testing client; ${client?.constructor?.name ?? String(client)} is neither`,
    );
  },
};

export const electionProviders = [electionsProvider, ElectionService];
