import { Module } from '@nestjs/common';
import { APP_FILTER, APP_INTERCEPTOR } from '@nestjs/core';
import { EtcdLockModule } from '../lib/index.js';
import { AccountsController } from './accounts/accounts.controller.js';
import { AccountsService } from './accounts/accounts.service.js';
import { AuditJob } from './accounts/audit.job.js';
import { AppConfig } from './config/app-config.js';
import { AppConfigModule } from './config/app-config.module.js';
import { CountersController } from './counters/counters.controller.js';
import { CountersService } from './counters/counters.service.js';
import { ExportsController } from './exports/exports.controller.js';
import { ExportsService } from './exports/exports.service.js';
import { LockWaitClock } from './lock-wait/lock-wait.js';
import { SeatsController } from './seats/seats.controller.js';
import { SeatsService } from './seats/seats.service.js';
import { FencedStore } from './state/fenced-store.js';
import { StoreExceptionFilter } from './state/store-exception.filter.js';
import { StatusController } from './status/status.controller.js';
import { heartbeatParts } from './ticks/heartbeat.parts.js';

const heartbeat = heartbeatParts();

/** The sample service: seat bookings, account transfers and statements, counters, rate-limited exports and (HEARTBEAT=1) a once-per-tick heartbeat and a leader-only report, all state in etcd. */
@Module({
  imports: [
    AppConfigModule,
    EtcdLockModule.forRootAsync({
      imports: [AppConfigModule],
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        hosts: config.etcdHosts,
        prefix: config.lockPrefix,
        ttl: config.lockTtl,
        waitTimeout: config.lockWaitTimeoutMs,
        ...heartbeat.lockOptions(config.instance),
      }),
    }),
    ...heartbeat.imports,
  ],
  controllers: [SeatsController, AccountsController, CountersController, ExportsController, StatusController, ...heartbeat.controllers],
  providers: [
    FencedStore,
    SeatsService,
    AccountsService,
    AuditJob,
    ...heartbeat.providers,
    CountersService,
    ExportsService,
    { provide: APP_INTERCEPTOR, useClass: LockWaitClock },
    { provide: APP_FILTER, useClass: StoreExceptionFilter },
  ],
})
export class AppModule {}
