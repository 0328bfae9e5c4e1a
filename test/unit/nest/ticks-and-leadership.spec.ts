/**
 * Two applications over the in-memory client sharing one tick ledger and one election ledger:
 * `LockService.events$` carries the ticks each ran (`tick`, `tick-ended`) and skipped
 * (`skipped`), with the tick's scheduled time; a skip logs nothing above debug; the health
 * indicator reports each job's last run and skip and whether the instance leads each election.
 */
import { jest } from '@jest/globals';
import { Injectable, Module, type INestApplication } from '@nestjs/common';
import { Cron, ScheduleModule } from '@nestjs/schedule';
import { TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import { ElectionService, LockService, type LockEvent, type LockLogger } from '../../../lib/index.js';
import { EtcdLockHealthIndicator } from '../../../lib/health/index.js';
import { EtcdLockScheduleModule, OncePerTick } from '../../../lib/schedule/index.js';
import { EtcdLockTestingModule, InMemoryElectionLedger, InMemoryTickClaims, InMemoryTickLedger } from '../../../lib/testing/index.js';
import { waitFor } from '../../support/wait.js';

@Injectable()
class Heartbeat {
  @Cron('* * * * * *')
  @OncePerTick({ name: 'heartbeat' })
  beat(): void {}
}

interface Instance {
  app: INestApplication;
  events: LockEvent[];
  logged: { level: 'warn' | 'error' | 'debug'; message: string }[];
}

async function instance(value: string, ticks: InMemoryTickLedger, elections: InMemoryElectionLedger): Promise<Instance> {
  const logged: Instance['logged'] = [];
  const logger: LockLogger = {
    warn: message => logged.push({ level: 'warn', message }),
    error: message => logged.push({ level: 'error', message }),
    debug: message => logged.push({ level: 'debug', message }),
  };
  @Module({
    imports: [
      ScheduleModule.forRoot(),
      TerminusModule.forRoot({ logger: false }),
      EtcdLockTestingModule.forRoot({ isGlobal: true, logger, electionLedger: elections, election: { value } }),
      EtcdLockScheduleModule.forRoot({ claims: new InMemoryTickClaims(ticks, { logger }) }),
    ],
    providers: [Heartbeat, EtcdLockHealthIndicator],
  })
  class AppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  const events: LockEvent[] = [];
  app.get(LockService).events$.subscribe(event => events.push(event));
  await app.init();
  return { app, events, logged };
}

jest.setTimeout(30_000);

describe('ticks and leadership in LockService.events$ and the health indicator (in memory)', () => {
  let a: Instance;
  let b: Instance;

  beforeAll(async () => {
    const ticks = new InMemoryTickLedger();
    const elections = new InMemoryElectionLedger();
    a = await instance('a', ticks, elections);
    await waitFor(() => a.app.get(ElectionService).isLeader(), { message: 'a leads' });
    b = await instance('b', ticks, elections);
    const ran = (i: Instance) => i.events.filter(e => e.type === 'tick-ended').map(e => (e as { scheduledAt: Date }).scheduledAt.getTime());
    const skipped = (i: Instance) => i.events.filter(e => e.type === 'skipped' && e.reason === 'claimed-elsewhere');
    // Every tick runs on one of the two, so a few seconds give each a run and a skip.
    await waitFor(() => ran(a).length > 0 && ran(b).length > 0 && skipped(a).length > 0 && skipped(b).length > 0, {
      timeoutMs: 15_000,
      message: 'each instance ran a tick and skipped one',
    });
  });
  afterAll(async () => {
    await Promise.all([a?.app.close(), b?.app.close()]);
  });

  it("events$ carries each tick run here and each one skipped, by the tick's scheduled time, and each tick is run by one instance", () => {
    const scheduled = (events: LockEvent[], type: LockEvent['type']) =>
      events.flatMap(e => (e.type === type && 'job' in e && e.scheduledAt ? [e.scheduledAt.toISOString()] : []));
    for (const { events } of [a, b]) {
      const tick = events.find(e => e.type === 'tick');
      expect(tick).toMatchObject({ job: 'heartbeat', scheduledAt: expect.any(Date), fencingToken: expect.any(BigInt) });
      expect((tick as { scheduledAt: Date }).scheduledAt.getMilliseconds()).toBe(0);
      expect(scheduled(events, 'tick-ended')).toEqual(expect.arrayContaining(scheduled(events, 'tick').slice(0, -1)));
    }
    const ranA = new Set(scheduled(a.events, 'tick'));
    const ranB = new Set(scheduled(b.events, 'tick'));
    expect([...ranA].filter(t => ranB.has(t))).toEqual([]);
    // What one skipped as claimed elsewhere, the other ran (the last tick's run may still be on its way).
    const skippedByB = b.events.flatMap(e =>
      e.type === 'skipped' && e.reason === 'claimed-elsewhere' ? [e.scheduledAt!.toISOString()] : [],
    );
    expect(skippedByB.slice(0, -1).every(t => ranA.has(t))).toBe(true);
  });

  it('a tick run elsewhere logs at debug only, and no skip logs an error', () => {
    for (const { logged } of [a, b]) {
      expect(logged.filter(l => l.level === 'error')).toEqual([]);
      // A firing delayed past the window by a loaded machine warns ('late'); one run elsewhere never does.
      expect(logged.filter(l => l.level === 'warn' && !/ skipped: late$/.test(l.message))).toEqual([]);
      expect(logged.some(l => l.level === 'debug' && /^tick .+ of "heartbeat" skipped: claimed-elsewhere$/.test(l.message))).toBe(true);
    }
  });

  it("the health indicator reports each job's last run and skip, and whether this instance leads each election", async () => {
    const [healthA, healthB] = await Promise.all([a, b].map(i => i.app.get(EtcdLockHealthIndicator).isHealthy('locks')));
    const tokenA = a.app.get(ElectionService).leadership()!.fencingToken;
    expect(healthA.locks).toMatchObject({
      status: 'up',
      elections: { default: { leader: true, campaigning: true, value: 'a', fencingToken: String(tokenA) } },
    });
    expect(healthB.locks).toMatchObject({ status: 'up', elections: { default: { leader: false, campaigning: true } } });
    for (const health of [healthA, healthB]) {
      const job = (health.locks as { ticks: Record<string, Record<string, unknown>> }).ticks.heartbeat!;
      expect(job).toMatchObject({
        windowMs: 500,
        ran: expect.any(Number),
        skipped: { 'claimed-elsewhere': expect.any(Number) },
        lastRun: { scheduledAt: expect.stringMatching(/\.000Z$/), fencingToken: expect.stringMatching(/^\d+$/) },
        lastSkip: { scheduledAt: expect.stringMatching(/\.000Z$/), reason: 'claimed-elsewhere' },
      });
      expect(job.ran).toBeGreaterThan(0);
      // Plain JSON, as terminus sends it.
      expect(() => JSON.stringify(health)).not.toThrow();
    }
  });
});
