import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { LockService } from '../nest/lock.service.js';

export interface EtcdLockHealthOptions {
  /** How long the etcd read may take before the indicator reports down, in ms. Default 1 000. */
  timeout?: number;
}

/**
 * A `@nestjs/terminus` health indicator (terminus 11 or 12): up while etcd answers a
 * linearizable read in time and the lock lease is not lost. Reports the round trip, the session
 * state (`alive`, `renewing` when a renewal is overdue, `lost`, ...) and the lease time left.
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
  ) {}

  async isHealthy<const Key extends string>(key: Key, options: EtcdLockHealthOptions = {}) {
    const indicator = this.indicators.check(key);
    const { state, remainingMs, grantedTtl } = this.locks.status();
    const session = { session: state, leaseTtlLeftMs: Math.round(remainingMs ?? 0), grantedTtl: grantedTtl ?? null };
    try {
      const roundTripMs = Math.round(await this.locks.client.ping(options.timeout ?? 1000));
      const data = { reachable: true, roundTripMs, ...session };
      return state === 'lost' || state === 'closed' ? indicator.down(data) : indicator.up(data);
    } catch (err) {
      return indicator.down({ reachable: false, message: (err as Error).message, ...session });
    }
  }
}
