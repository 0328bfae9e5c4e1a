import { Injectable } from '@nestjs/common';
import { Cron, CronExpression } from '@nestjs/schedule';
import { LockHandle, LockService } from '../../lib/index.js';
import { OncePerTick } from '../../lib/schedule/index.js';
import { AppConfig } from '../config/app-config.js';
import { FencedStore } from '../state/fenced-store.js';

/** One run of the heartbeat, as its instance remembers it. */
export interface HeartbeatRun {
  /** The tick's scheduled time (ISO), the same on every instance. */
  tick: string;
  fencingToken: string;
}

/**
 * A cron job that every instance schedules and exactly one runs per tick: it writes the
 * cluster's heartbeat record, fenced with the tick's token, so a stale runner's write is refused.
 */
@Injectable()
export class HeartbeatJob {
  /** This instance's runs, newest last (the demo collects them from every instance). */
  readonly runs: HeartbeatRun[] = [];

  constructor(
    private readonly locks: LockService,
    private readonly store: FencedStore,
    private readonly config: AppConfig,
  ) {}

  @Cron(CronExpression.EVERY_SECOND)
  @OncePerTick({ name: 'heartbeat' })
  async beat(): Promise<void> {
    const lock = this.locks.current();
    if (!(lock instanceof LockHandle)) throw new Error('beat() must run under its tick lock');
    const tick = lock.resource.slice(lock.resource.indexOf('@') + 1);
    await this.store.updateOne('heartbeat', lock.fencingToken, () => ({ tick, by: this.config.instance }));
    this.runs.push({ tick, fencingToken: lock.fencingToken.toString() });
  }
}
