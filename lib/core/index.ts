export * from './errors.js';
export { LockHandle, LockSet } from './handle.js';
export { EtcdLockClient, type AcquireOptions, type HeldLock, type SessionStatus } from './lock-client.js';
export type { LockClientOptions } from './options.js';
export type { LockLogger } from './logger.js';
export { MAX_KEY_BYTES, encodeResource, decodeResource } from './keys.js';
