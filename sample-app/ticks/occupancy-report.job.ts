import { Injectable } from '@nestjs/common';
import { Interval } from '@nestjs/schedule';
import { LeaderOnly, LockHandle, LockService } from '../../lib/index.js';
import { AppConfig } from '../config/app-config.js';
import type { Seat } from '../seats/seats.service.js';
import { FencedStore } from '../state/fenced-store.js';

/** The occupancy report, kept in etcd for every instance to read. */
export interface OccupancyReport {
  booked: number;
  /** The etcd revision at which the seats were read. */
  revision: string;
  at: string;
  by: string;
}

const REPORT_RECORD = 'reports/occupancy';

/**
 * A job that only the leader of election `default` runs: every 500 ms it counts the booked seats
 * at one etcd revision and publishes the report, fenced with its leadership's token, so a leader
 * that lost its lease while paused cannot overwrite its successor's report.
 */
@Injectable()
export class OccupancyReportJob {
  /** How often this instance published the report (0 on every instance but the leader's). */
  runs = 0;

  constructor(
    private readonly store: FencedStore,
    private readonly locks: LockService,
    private readonly config: AppConfig,
  ) {}

  @Interval(500)
  @LeaderOnly()
  async publish(): Promise<void> {
    // The leadership's lock: its fencing token rises with every new leader.
    const lock = this.locks.current();
    if (!(lock instanceof LockHandle)) throw new Error('publish() must run under its leadership');
    const { revision, records } = await this.store.readAll<Seat>('seats/');
    const report: OccupancyReport = { booked: records.size, revision, at: new Date().toISOString(), by: this.config.instance };
    await this.store.updateOne(REPORT_RECORD, lock.fencingToken, () => report);
    this.runs++;
  }

  lastReport(): Promise<OccupancyReport | undefined> {
    return this.store.read<OccupancyReport>(REPORT_RECORD);
  }
}
