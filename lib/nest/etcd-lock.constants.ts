/** Injection token of the module's {@link EtcdLockClient}. */
export const ETCD_LOCK_CLIENT = Symbol('ETCD_LOCK_CLIENT');

/** Metadata key under which `@Locked` stores its definition on the method. */
export const LOCKED_METADATA = 'nest-etcd-lock:locked';
