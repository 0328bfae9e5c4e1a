import { Injectable, Module, Scope, type INestApplication, type Type } from '@nestjs/common';
import { Cron, Interval, ScheduleModule, Timeout } from '@nestjs/schedule';
import { jest } from '@jest/globals';
import { Test } from '@nestjs/testing';
import { LockHandle, LockService } from '../../lib/index.js';
import { EtcdLockScheduleModule, InvalidScheduleError, OncePerTick, TickService, type TickEvent } from '../../lib/schedule/index.js';
import { EtcdLockTestingModule, InMemoryTickClaims, InMemoryTickLedger } from '../../lib/testing/index.js';
import { waitFor } from '../support/wait.js';

/** Every run of the jobs below, in every app of the test: [job, scheduled time, fencing token]. */
const runs: { job: string; scheduledAt: string; token: bigint }[] = [];

function record(job: string, locks: LockService): void {
  const lock = locks.current();
  if (!(lock instanceof LockHandle)) throw new Error('no tick lock around the job');
  runs.push({ job, scheduledAt: lock.resource.slice(lock.resource.indexOf('@') + 1), token: lock.fencingToken });
}

@Injectable()
class Jobs {
  constructor(private readonly locks: LockService) {}

  @Cron('* * * * * *')
  @OncePerTick({ name: 'cron-above' })
  cronAbove(): void {
    record('cron-above', this.locks);
  }

  @OncePerTick({ name: 'cron-below' })
  @Cron('* * * * * *')
  async cronBelow(): Promise<void> {
    record('cron-below', this.locks);
  }
}

async function startApp(providers: Type[], claims?: InMemoryTickClaims): Promise<INestApplication> {
  @Module({
    imports: [ScheduleModule.forRoot(), EtcdLockTestingModule.forRoot({ isGlobal: true }), EtcdLockScheduleModule.forRoot({ claims })],
    providers,
  })
  class AppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  const app = moduleRef.createNestApplication({ logger: process.env.DEBUG_TICKS ? undefined : false });
  await app.init();
  return app;
}

jest.setTimeout(60_000);

describe('@OncePerTick over the in-memory client', () => {
  afterEach(() => {
    runs.length = 0;
  });

  it('runs each tick once across three apps sharing a ledger, with either decorator order, under the tick lock', async () => {
    const ledger = new InMemoryTickLedger();
    const apps = await Promise.all([0, 1, 2].map(() => startApp([Jobs], new InMemoryTickClaims(ledger))));
    const events: TickEvent[] = [];
    for (const app of apps) app.get(TickService).events$.subscribe(event => events.push(event));
    try {
      await waitFor(() => runs.filter(r => r.job === 'cron-below').length >= 3 && runs.filter(r => r.job === 'cron-above').length >= 3, {
        timeoutMs: 6000,
      });
    } finally {
      await Promise.all(apps.map(app => app.close()));
    }
    for (const job of ['cron-above', 'cron-below']) {
      const ticks = runs.filter(r => r.job === job).map(r => r.scheduledAt);
      expect(new Set(ticks).size).toBe(ticks.length);
    }
    const tokens = runs.map(r => r.token);
    expect(new Set(tokens).size).toBe(tokens.length);
    // Besides ticks run elsewhere: a firing delayed past the window by a loaded machine ('late', at most once first), and those during close().
    expect(events.filter(e => e.type === 'skipped' && !['claimed-elsewhere', 'late', 'shutting-down'].includes(e.reason))).toEqual([]);
    expect(events.some(e => e.type === 'skipped' && e.reason === 'claimed-elsewhere')).toBe(true);
    expect(ledger.keyNames()).toEqual([]);
  });

  it('fails the bootstrap with InvalidScheduleError for a method without @Cron, on @Interval and @Timeout, on a request-scoped provider, and for a name used twice', async () => {
    @Injectable()
    class NoSchedule {
      @OncePerTick()
      job(): void {}
    }
    @Injectable()
    class OnInterval {
      @Interval(1000)
      @OncePerTick()
      job(): void {}
    }
    @Injectable()
    class OnTimeout {
      @OncePerTick()
      @Timeout(1000)
      job(): void {}
    }
    @Injectable()
    class Twice {
      @Cron('* * * * * *')
      @OncePerTick({ name: 'same' })
      a(): void {}
      @Cron('* * * * * *')
      @OncePerTick({ name: 'same' })
      b(): void {}
    }
    @Injectable({ scope: Scope.REQUEST })
    class PerRequest {
      @Cron('* * * * * *')
      @OncePerTick()
      job(): void {}
    }
    await expect(startApp([PerRequest])).rejects.toThrow(/PerRequest\.job: its provider is request-scoped/);
    await expect(startApp([NoSchedule])).rejects.toThrow(
      new InvalidScheduleError('NoSchedule.job', 'the method has no @Cron schedule to take its ticks from'),
    );
    await expect(startApp([OnInterval])).rejects.toThrow(/OnInterval\.job: @Interval fires relative to each instance's start/);
    await expect(startApp([OnTimeout])).rejects.toThrow(/OnTimeout\.job: @Timeout/);
    await expect(startApp([Twice])).rejects.toThrow(/the job name "same" is already used by Twice\.a/);
    await expect(startApp([Twice])).rejects.toBeInstanceOf(InvalidScheduleError);
  });

  it('refuses empty names, names that would break keys, unknown options and bad overlap values when the class is defined', () => {
    for (const name of ['', 'a/b', 'a b', 'x'.repeat(201), 'é']) {
      expect(() => OncePerTick({ name })).toThrow(InvalidScheduleError);
    }
    expect(() => OncePerTick({ nmae: 'x' } as never)).toThrow(/unknown option nmae/);
    expect(() => OncePerTick({ overlap: 'sometimes' } as never)).toThrow(/overlap/);
  });

  it('skips a tick whose previous run is still going (overlap forbid)', async () => {
    let release!: () => void;
    const started: string[] = [];
    @Injectable()
    class Slow {
      @Cron('* * * * * *')
      @OncePerTick({ name: 'slow' })
      async slow(): Promise<string> {
        started.push(new Date().toISOString());
        await new Promise<void>(resolve => (release = resolve));
        return 'done';
      }
    }
    const app = await startApp([Slow]);
    const events: TickEvent[] = [];
    app.get(TickService).events$.subscribe(event => events.push(event));
    try {
      await waitFor(() => events.some(e => e.type === 'skipped' && e.reason === 'still-running'), { timeoutMs: 4000 });
      expect(started).toHaveLength(1);
      release();
      expect(app.get(TickService).jobs()[0]).toMatchObject({ job: 'slow', windowMs: 500 });
    } finally {
      await app.close();
    }
  });

  it('returns undefined without running when called by hand away from any tick, with a skipped event', async () => {
    let ran = 0;
    @Injectable()
    class Yearly {
      @Cron('0 0 0 1 1 *')
      @OncePerTick()
      job(): string {
        ran++;
        return 'ran';
      }
    }
    const app = await startApp([Yearly]);
    const events: TickEvent[] = [];
    app.get(TickService).events$.subscribe(event => events.push(event));
    try {
      await expect(app.get(Yearly).job()).resolves.toBeUndefined();
      expect(ran).toBe(0);
      expect(events).toEqual([{ type: 'skipped', job: 'Yearly.job', scheduledAt: undefined, reason: 'off-schedule' }]);
    } finally {
      await app.close();
    }
  });
});
