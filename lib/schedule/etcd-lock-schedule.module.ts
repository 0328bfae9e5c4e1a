import { Module, type DynamicModule } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { OncePerTickExplorer } from './once-per-tick.explorer.js';
import { ETCD_LOCK_SCHEDULE_OPTIONS, type EtcdLockScheduleModuleOptions } from './schedule-module-options.js';
import { TickService } from './tick.service.js';

/**
 * `@OncePerTick` for the application's `@nestjs/schedule` jobs, on the etcd of `EtcdLockModule`
 * (or in memory under `EtcdLockTestingModule`):
 *
 * ```ts
 * imports: [ScheduleModule.forRoot(), EtcdLockModule.forRoot({ hosts }), EtcdLockScheduleModule.forRoot()]
 * ```
 */
@Module({})
export class EtcdLockScheduleModule {
  static forRoot(options: EtcdLockScheduleModuleOptions = {}): DynamicModule {
    return {
      module: EtcdLockScheduleModule,
      imports: [DiscoveryModule],
      providers: [{ provide: ETCD_LOCK_SCHEDULE_OPTIONS, useValue: options }, TickService, OncePerTickExplorer],
      exports: [TickService],
    };
  }
}
