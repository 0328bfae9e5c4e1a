/**
 * Child process of test/schedule/*.etcd.spec.ts (run compiled, from dist/): one instance of a
 * Nest application whose @Cron jobs run every second. Configured by environment:
 *
 *   TICK_ETCD (endpoints), TICK_PREFIX (key prefix of this run), TICK_INSTANCE (name),
 *   TICK_MODE: 'once'    jobs of 0, 5 and 200 ms with @OncePerTick
 *              'control' the same jobs with @Locked(name, { tryOnly: true }), as users try first
 *              'forbid' / 'allow'  one 1500 ms job with @OncePerTick({ overlap })
 *              'long'    one 3000 ms @OncePerTick job (the test kills its runner mid-job)
 *   TICK_TTL (lease TTL, s; default 5)
 *
 * Prints JSON lines on stdout: {"type":"ready","now":<Date.now()>}, then per run
 * {"type":"run","job","scheduledAt":<ms>,"token","start":<ns>,"end":<ns>} ("start" first,
 * as {"type":"start",...}), every tick event as {"type":"event","event":...}, and every line the
 * application logs as {"type":"log","level","message"}. `start`/`end` are CLOCK_MONOTONIC
 * (not faked by libfaketime), comparable across processes. Exits when stdin closes.
 */
import 'reflect-metadata';
import { Injectable, Module, type LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Cron, ScheduleModule } from '@nestjs/schedule';
import { EtcdLockModule, LockHandle, LockService, Locked } from '../../lib/index.js';
import { EtcdLockScheduleModule, OncePerTick, TickService } from '../../lib/schedule/index.js';

const mode = process.env.TICK_MODE ?? 'once';
const EVERY_SECOND = '* * * * * *';

function emit(line: object): void {
  process.stdout.write(`${JSON.stringify(line, (_, v) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
}

/** Runs one job body and reports it; the scheduled time is the tick lock's, or (control) the nearest second. */
async function job(name: string, durationMs: number, locks: LockService): Promise<void> {
  const start = process.hrtime.bigint();
  const lock = locks.current();
  if (!(lock instanceof LockHandle)) throw new Error(`${name} ran without a lock`);
  const tick = lock.resource.includes('@')
    ? Date.parse(lock.resource.slice(lock.resource.indexOf('@') + 1))
    : Math.round(Date.now() / 1000) * 1000;
  emit({ type: 'start', job: name, scheduledAt: tick, token: lock.fencingToken, start });
  if (durationMs > 0) await new Promise(resolve => setTimeout(resolve, durationMs));
  emit({ type: 'run', job: name, scheduledAt: tick, token: lock.fencingToken, start, end: process.hrtime.bigint() });
}

@Injectable()
class OnceJobs {
  constructor(private readonly locks: LockService) {}
  @Cron(EVERY_SECOND)
  @OncePerTick({ name: 'job-0' })
  zero() {
    return job('job-0', 0, this.locks);
  }
  @OncePerTick({ name: 'job-5' })
  @Cron(EVERY_SECOND)
  five() {
    return job('job-5', 5, this.locks);
  }
  @Cron(EVERY_SECOND)
  @OncePerTick({ name: 'job-200' })
  twoHundred() {
    return job('job-200', 200, this.locks);
  }
}

@Injectable()
class ControlJobs {
  constructor(private readonly locks: LockService) {}
  @Cron(EVERY_SECOND)
  @Locked('job-0', { tryOnly: true })
  async zero() {
    return job('job-0', 0, this.locks);
  }
  @Cron(EVERY_SECOND)
  @Locked('job-5', { tryOnly: true })
  async five() {
    return job('job-5', 5, this.locks);
  }
  @Cron(EVERY_SECOND)
  @Locked('job-200', { tryOnly: true })
  async twoHundred() {
    return job('job-200', 200, this.locks);
  }
}

@Injectable()
class ForbidJob {
  constructor(private readonly locks: LockService) {}
  @Cron(EVERY_SECOND)
  @OncePerTick({ name: 'slow' })
  slow() {
    return job('slow', 1500, this.locks);
  }
}

@Injectable()
class AllowJob {
  constructor(private readonly locks: LockService) {}
  @Cron(EVERY_SECOND)
  @OncePerTick({ name: 'slow', overlap: 'allow' })
  slow() {
    return job('slow', 1500, this.locks);
  }
}

@Injectable()
class LongJob {
  constructor(private readonly locks: LockService) {}
  @Cron(EVERY_SECOND)
  @OncePerTick({ name: 'long' })
  long() {
    return job('long', 3000, this.locks);
  }
}

const JOBS = { once: OnceJobs, control: ControlJobs, forbid: ForbidJob, allow: AllowJob, long: LongJob } as const;

/** Every line the application logs, as JSON, so the test can check that skipping logs nothing above debug. */
class JsonLogger implements LoggerService {
  log = (message: unknown) => emit({ type: 'log', level: 'log', message: String(message) });
  error = (message: unknown, ...rest: unknown[]) =>
    emit({ type: 'log', level: 'error', message: `${describe(message)} ${rest.map(describe).join(' ')}` });
  warn = (message: unknown) => emit({ type: 'log', level: 'warn', message: String(message) });
  debug = (message: unknown) => emit({ type: 'log', level: 'debug', message: String(message) });
  verbose = (message: unknown) => emit({ type: 'log', level: 'verbose', message: String(message) });
}

function describe(value: unknown): string {
  return value instanceof Error ? `${value.name}: ${value.message}` : String(value);
}

async function main(): Promise<void> {
  const jobs = JOBS[mode as keyof typeof JOBS];
  if (!jobs) throw new Error(`unknown TICK_MODE ${mode}`);
  const prefix = process.env.TICK_PREFIX ?? 'tick-test/';
  @Module({
    imports: [
      ScheduleModule.forRoot(),
      EtcdLockModule.forRoot({
        hosts: process.env.TICK_ETCD,
        prefix: `${prefix}locks/`,
        ttl: Number(process.env.TICK_TTL ?? 5),
        debug: true,
      }),
      EtcdLockScheduleModule.forRoot({ prefix: `${prefix}ticks/` }),
    ],
    providers: [jobs],
  })
  class TickAppModule {}
  const app = await NestFactory.createApplicationContext(TickAppModule, { logger: new JsonLogger() });
  app.get(TickService).events$.subscribe(event => emit({ type: 'event', event }));
  emit({ type: 'ready', now: Date.now(), mono: process.hrtime.bigint(), instance: process.env.TICK_INSTANCE });
  process.stdin.resume();
  process.stdin.on('end', () => {
    void app.close().then(() => process.exit(0));
  });
}

main().catch(err => {
  emit({ type: 'error', message: String(err?.stack ?? err) });
  process.exit(1);
});
