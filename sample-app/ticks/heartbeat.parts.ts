import { ScheduleModule } from '@nestjs/schedule';
import { EtcdLockScheduleModule } from '../../lib/schedule/index.js';
import { HeartbeatJob } from './heartbeat.job.js';
import { TicksController } from './ticks.controller.js';

/**
 * The heartbeat cron and `GET /ticks`, with `HEARTBEAT=1` (the demo sets it; `TICK_PREFIX`
 * separates runs). Off by default, so the sample app's other tests keep their etcd traffic.
 */
export function heartbeatParts(env: NodeJS.ProcessEnv = process.env) {
  if (env.HEARTBEAT !== '1') return { imports: [], controllers: [], providers: [] };
  return {
    imports: [ScheduleModule.forRoot(), EtcdLockScheduleModule.forRoot({ prefix: env.TICK_PREFIX ?? 'sample-app/ticks/' })],
    controllers: [TicksController],
    providers: [HeartbeatJob],
  };
}
