import { ScheduleModule } from '@nestjs/schedule';
import { EtcdLockScheduleModule } from '../../lib/schedule/index.js';
import type { EtcdLockModuleOptions } from '../../lib/index.js';
import { HeartbeatJob } from './heartbeat.job.js';
import { OccupancyReportJob } from './occupancy-report.job.js';
import { TicksController } from './ticks.controller.js';

/**
 * The heartbeat cron, the leader-only occupancy report and `GET /ticks`, with `HEARTBEAT=1` (the
 * demo sets it; `TICK_PREFIX` and `ELECTION_PREFIX` separate runs). Off by default, so the sample
 * app's other tests keep their etcd traffic.
 */
export function heartbeatParts(env: NodeJS.ProcessEnv = process.env) {
  if (env.HEARTBEAT !== '1') return { imports: [], controllers: [], providers: [], lockOptions: () => ({}) };
  return {
    imports: [ScheduleModule.forRoot(), EtcdLockScheduleModule.forRoot({ prefix: env.TICK_PREFIX ?? 'sample-app/ticks/' })],
    controllers: [TicksController],
    providers: [HeartbeatJob, OccupancyReportJob],
    /** Every instance campaigns in election `default` under its own name, for `@LeaderOnly`. */
    lockOptions: (instance: string): Pick<EtcdLockModuleOptions, 'election' | 'electionPrefix'> => ({
      election: { value: instance },
      electionPrefix: env.ELECTION_PREFIX ?? 'sample-app/elections/',
    }),
  };
}
