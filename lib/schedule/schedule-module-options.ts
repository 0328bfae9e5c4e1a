import type { TickClaims } from '../core/index.js';

/** Options of `EtcdLockScheduleModule.forRoot()`. */
export interface EtcdLockScheduleModuleOptions {
  /**
   * Prefix of the tick keys (`<prefix><job>/<ISO time>`, `<prefix><job>/running`). Instances
   * sharing it share ticks. Default `'ticks/'`; keep it apart from the lock prefix.
   */
  prefix?: string;
  /**
   * Where ticks are claimed. Default: on the etcd of `EtcdLockModule`, or in memory over the
   * in-memory client. Tests give several apps one `InMemoryTickClaims` ledger to share ticks.
   */
  claims?: TickClaims;
}

export const ETCD_LOCK_SCHEDULE_OPTIONS = Symbol('ETCD_LOCK_SCHEDULE_OPTIONS');
