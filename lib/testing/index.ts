export { EtcdLockTestingModule } from './etcd-lock-testing.module.js';
export { InMemoryLockClient, type InMemoryLockClientOptions } from './in-memory-lock-client.js';
