export { EtcdLockTestingModule, type EtcdLockTestingModuleOptions } from './etcd-lock-testing.module.js';
export { InMemoryLockClient, type InMemoryLockClientOptions } from './in-memory-lock-client.js';
export { InMemoryTickClaims, InMemoryTickLedger } from './in-memory-tick-claims.js';
export { InMemoryElections, InMemoryElectionLedger } from './in-memory-elections.js';
