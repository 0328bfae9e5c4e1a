import { jest } from '@jest/globals';
import { Controller, Get, type INestApplication } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { EtcdLockModule } from '../../lib/index.js';
import { EtcdLockHealthIndicator } from '../../lib/health/index.js';
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

describe('EtcdLockHealthIndicator with @nestjs/terminus (real etcd)', () => {
  let etcd: EtcdCluster;
  let app: INestApplication;

  beforeAll(async () => {
    etcd = await startEtcd();
    const moduleRef = await Test.createTestingModule({
      imports: [TerminusModule.forRoot({ logger: false }), EtcdLockModule.forRoot({ hosts: etcd.endpoints, prefix: uniquePrefix('health'), ttl: 10, logger: false })],
      controllers: [HealthController],
      providers: [EtcdLockHealthIndicator],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
  });
  afterAll(async () => {
    etcd?.members[0].resume();
    await app?.close();
    await etcd?.close();
  });

  it('reports up with the session state and lease time left', async () => {
    const res = await request(app.getHttpServer()).get('/health');
    expect(res.status).toBe(200);
    expect(res.body.details.locks).toMatchObject({ status: 'up', reachable: true, session: 'alive', grantedTtl: 10 });
    expect(res.body.details.locks.leaseTtlLeftMs).toBeGreaterThan(5000);
    expect(res.body.details.locks.roundTripMs).toBeGreaterThanOrEqual(0);
  });

  it('reports down when etcd does not answer in time, and up again when it does', async () => {
    etcd.members[0].pause();
    try {
      const res = await request(app.getHttpServer()).get('/health');
      expect(res.status).toBe(503);
      expect(res.body.details.locks).toMatchObject({ status: 'down', reachable: false });
      expect(res.body.details.locks.message).toMatch(/^etcd unavailable/);
    } finally {
      etcd.members[0].resume();
    }
    // The client reconnects (its circuit breaker half-opens after 500 ms).
    await waitFor(async () => (await request(app.getHttpServer()).get('/health')).status === 200, {
      timeoutMs: 5000,
      message: 'health up again after etcd resumed',
    });
  });
});
