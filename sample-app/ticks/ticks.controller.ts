import { Controller, Get } from '@nestjs/common';
import { ElectionService } from '../../lib/index.js';
import { TickService } from '../../lib/schedule/index.js';
import { AppConfig } from '../config/app-config.js';
import { HeartbeatJob } from './heartbeat.job.js';
import { OccupancyReportJob } from './occupancy-report.job.js';

/** The heartbeat ticks this instance ran, its view of every @OncePerTick job, and whether it leads. */
@Controller('ticks')
export class TicksController {
  constructor(
    private readonly heartbeat: HeartbeatJob,
    private readonly ticks: TickService,
    private readonly occupancy: OccupancyReportJob,
    private readonly elections: ElectionService,
    private readonly config: AppConfig,
  ) {}

  @Get()
  async list() {
    const jobs = this.ticks
      .jobs()
      .map(job => ({ ...job, lastRun: job.lastRun && { ...job.lastRun, fencingToken: job.lastRun.fencingToken.toString() } }));
    const leader = { isLeader: this.elections.isLeader(), reportRuns: this.occupancy.runs, lastReport: await this.occupancy.lastReport() };
    return { instance: this.config.instance, runs: this.heartbeat.runs, jobs, leader };
  }
}
