import { Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { HealthIndicatorService } from '@nestjs/terminus';
import { ElectionService } from '../nest/election.service.js';
import { LockService } from '../nest/lock.service.js';
import { TickService } from '../schedule/tick.service.js';
import { describeElections, describeTicks } from './health-details.js';

export interface EtcdLockHealthOptions {
  /** How long the etcd read may take before the indicator reports down, in ms. Default 1 000. */
  timeout?: number;
}

/**
 * A `@nestjs/terminus` health indicator (terminus 11 or 12): up while etcd answers a
 * linearizable read in time and the lock lease is not lost. Reports the round trip, the session
 * state (`alive`, `renewing` when a renewal is overdue, `lost`, ...) and the lease time left;
 * with `election` options or campaigns through `ElectionService`, whether this instance leads
 * each election (`elections`); with `EtcdLockScheduleModule`, each `@OncePerTick` job's last run
 * and skip here (`ticks`). Neither changes up or down: not leading and skipping are normal.
 *
 * ```ts
 * @Get('health') @HealthCheck()
 * check() { return this.health.check([() => this.etcdLock.isHealthy('locks')]); }
 * ```
 */
@Injectable()
export class EtcdLockHealthIndicator {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly locks: LockService,
    private readonly moduleRef: ModuleRef,
  ) {}

  async isHealthy<const Key extends string>(key: Key, options: EtcdLockHealthOptions = {}) {
    const indicator = this.indicators.check(key);
    const { state, remainingMs, grantedTtl } = this.locks.status();
    const elections = this.find(ElectionService)?.standings() ?? [];
    const ticks = this.find(TickService)?.jobs() ?? [];
    const session = {
      session: state,
      leaseTtlLeftMs: Math.round(remainingMs ?? 0),
      grantedTtl: grantedTtl ?? null,
      ...(elections.length > 0 ? { elections: describeElections(elections) } : {}),
      ...(ticks.length > 0 ? { ticks: describeTicks(ticks) } : {}),
    };
    try {
      const roundTripMs = Math.round(await this.locks.client.ping(options.timeout ?? 1000));
      const data = { reachable: true, roundTripMs, ...session };
      return state === 'lost' || state === 'closed' ? indicator.down(data) : indicator.up(data);
    } catch (err) {
      return indicator.down({ reachable: false, message: (err as Error).message, ...session });
    }
  }

  /** A provider of the application, wherever it is registered (the schedule module is optional). */
  private find<T>(type: new (...args: never[]) => T): T | undefined {
    try {
      return this.moduleRef.get(type, { strict: false });
    } catch {
      return undefined;
    }
  }
}
