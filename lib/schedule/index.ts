export { OncePerTick, type OncePerTickOptions } from './once-per-tick.decorator.js';
export { EtcdLockScheduleModule } from './etcd-lock-schedule.module.js';
export type { EtcdLockScheduleModuleOptions } from './schedule-module-options.js';
export { InvalidScheduleError } from './schedule-errors.js';
export { TickService } from './tick.service.js';
export type { TickJobStatus } from './tick-job-status.js';
export type { TickEvent, TickOverlap, TickSkip, TickSkipReason } from '../core/index.js';
export { LeaderOnly } from '../nest/leader-only.decorator.js';
