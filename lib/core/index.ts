export * from './errors.js';
export { LockHandle, LockSet, type LockLease, type LeaseEnd } from './handle.js';
export { LockClient, type AcquireOptions, type AcquireOneOptions, type HeldLock, type SessionStatus } from './lock-client.js';
export { EtcdLockClient } from './etcd-lock-client.js';
export { LockEvents, type LockEvent, type LockEventListener } from './lock-events.js';
export type { LockInspection, LockQueueEntry } from './lock-inspection.js';
export { resolveLockOptions, type LockClientOptions, type ResolvedLockOptions } from './options.js';
export type { LockLogger } from './logger.js';
export { MAX_KEY_BYTES, encodeResource, decodeResource } from './keys.js';
