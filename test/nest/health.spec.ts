import { jest } from '@jest/globals';
import { Controller, Get, Injectable, type INestApplication } from '@nestjs/common';
import { Cron, ScheduleModule } from '@nestjs/schedule';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { ElectionService, EtcdLockModule, LockService, type LockEvent } from '../../lib/index.js';
import { EtcdLockHealthIndicator } from '../../lib/health/index.js';
import { EtcdLockScheduleModule, OncePerTick } from '../../lib/schedule/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { uniquePrefix } from './fixtures/test-app.js';

jest.setTimeout(30_000);

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly etcdLock: EtcdLockHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.etcdLock.isHealthy('locks', { timeout: 300 })]);
  }
}

/** The health controller's app on its own etcd, started before and closed after the enclosing tests. */
function healthApp(name: string, ttl: number): { etcd: EtcdCluster; app: INestApplication } {
  const fixture = {} as { etcd: EtcdCluster; app: INestApplication };
  beforeAll(async () => {
    fixture.etcd = await startEtcd();
    const moduleRef = await Test.createTestingModule({
      imports: [
        TerminusModule.forRoot({ logger: false }),
        EtcdLockModule.forRoot({ hosts: fixture.etcd.endpoints, prefix: uniquePrefix(name), ttl, logger: false }),
      ],
      controllers: [HealthController],
      providers: [EtcdLockHealthIndicator],
    }).compile();
    fixture.app = moduleRef.createNestApplication({ logger: false });
    await fixture.app.init();
  });
  afterAll(async () => {
    fixture.etcd?.members[0].resume();
    await fixture.app?.close();
    await fixture.etcd?.close();
  });
  return fixture;
}

describe('EtcdLockHealthIndicator with @nestjs/terminus (real etcd)', () => {
  const fixture = healthApp('health', 10);

  it('reports up with the session state and lease time left', async () => {
    const res = await request(fixture.app.getHttpServer()).get('/health');
    expect(res.status).toBe(200);
    expect(res.body.details.locks).toMatchObject({ status: 'up', reachable: true, session: 'alive', grantedTtl: 10 });
    expect(res.body.details.locks.leaseTtlLeftMs).toBeGreaterThan(5000);
    expect(res.body.details.locks.roundTripMs).toBeGreaterThanOrEqual(0);
  });

  it('reports down when etcd does not answer in time, and up again when it does', async () => {
    fixture.etcd.members[0].pause();
    try {
      const res = await request(fixture.app.getHttpServer()).get('/health');
      expect(res.status).toBe(503);
      expect(res.body.details.locks).toMatchObject({ status: 'down', reachable: false });
      expect(res.body.details.locks.message).toMatch(/^etcd unavailable/);
    } finally {
      fixture.etcd.members[0].resume();
    }
    // The client reconnects (its circuit breaker half-opens after 500 ms).
    await waitFor(async () => (await request(fixture.app.getHttpServer()).get('/health')).status === 200, {
      timeoutMs: 5000,
      message: 'health up again after etcd resumed',
    });
  });
});

describe('EtcdLockHealthIndicator after a lease loss (real etcd paused past the TTL)', () => {
  const fixture = healthApp('health-loss', 2);

  it('reports the session lost (down) while no lease is alive, and up with a fresh lease once etcd answers, without any acquisition', async () => {
    const locks = fixture.app.get(LockService);
    const lock = await locks.acquire('held');
    const oldLease = lock.leaseId;
    fixture.etcd.members[0].pause();
    try {
      await waitFor(() => lock.signal.aborted, { timeoutMs: 5000, message: 'the held lock lost' });
      const res = await request(fixture.app.getHttpServer()).get('/health');
      expect(res.status).toBe(503);
      expect(res.body.details.locks).toMatchObject({ status: 'down', session: 'lost', leaseTtlLeftMs: 0 });
    } finally {
      fixture.etcd.members[0].resume();
    }
    await waitFor(async () => (await request(fixture.app.getHttpServer()).get('/health')).status === 200, {
      timeoutMs: 8000,
      message: 'health up again after etcd resumed',
    });
    const res = await request(fixture.app.getHttpServer()).get('/health');
    expect(res.body.details.locks).toMatchObject({ status: 'up', session: 'alive' });
    expect(locks.status().leaseId).not.toBe(oldLease);
    await lock.release();
  });
});

@Injectable()
class Heartbeat {
  @Cron('* * * * * *')
  @OncePerTick({ name: 'heartbeat' })
  beat(): void {}
}

describe('ticks and leadership on real etcd: LockService.events$ and the health indicator', () => {
  let etcd: EtcdCluster;
  const apps: INestApplication[] = [];
  const events: LockEvent[][] = [];

  beforeAll(async () => {
    etcd = await startEtcd();
    const prefix = uniquePrefix('health-ticks');
    for (const value of ['a', 'b']) {
      const moduleRef = await Test.createTestingModule({
        imports: [
          ScheduleModule.forRoot(),
          TerminusModule.forRoot({ logger: false }),
          EtcdLockModule.forRoot({
            hosts: etcd.endpoints,
            prefix,
            electionPrefix: `${prefix}elections/`,
            election: { value },
            logger: false,
          }),
          EtcdLockScheduleModule.forRoot({ prefix: `${prefix}ticks/` }),
        ],
        controllers: [HealthController],
        providers: [EtcdLockHealthIndicator, Heartbeat],
      }).compile();
      const app = moduleRef.createNestApplication({ logger: false });
      const seen: LockEvent[] = [];
      app.get(LockService).events$.subscribe(event => seen.push(event));
      await app.init();
      apps.push(app);
      events.push(seen);
      if (value === 'a') await waitFor(() => app.get(ElectionService).isLeader(), { message: 'a leads' });
    }
  });
  afterAll(async () => {
    await Promise.all(apps.map(app => app.close()));
    await etcd?.close();
  });

  it('each instance sees the ticks it ran and skipped with their scheduled time; /health shows them and who leads', async () => {
    const ticks = (seen: LockEvent[], type: 'tick' | 'skipped') =>
      seen.flatMap(e => (e.type === type && e.scheduledAt ? [e.scheduledAt.toISOString()] : []));
    await waitFor(() => events.every(seen => ticks(seen, 'tick').length > 0 && ticks(seen, 'skipped').length > 0), {
      timeoutMs: 15_000,
      message: 'each instance ran a tick and skipped one',
    });
    const [ranA, ranB] = events.map(seen => ticks(seen, 'tick'));
    expect(ranA!.filter(t => ranB!.includes(t))).toEqual([]);
    expect(events[1]!.find(e => e.type === 'skipped')).toMatchObject({ job: 'heartbeat', reason: 'claimed-elsewhere' });

    const [healthA, healthB] = await Promise.all(apps.map(app => request(app.getHttpServer()).get('/health')));
    expect(healthA!.body.details.locks).toMatchObject({ status: 'up', elections: { default: { leader: true, value: 'a' } } });
    expect(healthB!.body.details.locks).toMatchObject({ status: 'up', elections: { default: { leader: false, campaigning: true } } });
    for (const health of [healthA!, healthB!])
      expect(health.body.details.locks.ticks.heartbeat).toMatchObject({
        lastRun: { scheduledAt: expect.stringMatching(/\.000Z$/) },
        lastSkip: { reason: 'claimed-elsewhere' },
      });
  });
});
