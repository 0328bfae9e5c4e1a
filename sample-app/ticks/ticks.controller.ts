import { Controller, Get } from '@nestjs/common';
import { TickService } from '../../lib/schedule/index.js';
import { AppConfig } from '../config/app-config.js';
import { HeartbeatJob } from './heartbeat.job.js';

/** The heartbeat ticks this instance ran, and its view of every @OncePerTick job. */
@Controller('ticks')
export class TicksController {
  constructor(
    private readonly heartbeat: HeartbeatJob,
    private readonly ticks: TickService,
    private readonly config: AppConfig,
  ) {}

  @Get()
  list() {
    const jobs = this.ticks
      .jobs()
      .map(job => ({ ...job, lastRun: job.lastRun && { ...job.lastRun, fencingToken: job.lastRun.fencingToken.toString() } }));
    return { instance: this.config.instance, runs: this.heartbeat.runs, jobs };
  }
}
