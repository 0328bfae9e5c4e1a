import { Module, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { ETCD_LOCK_CLIENT, EtcdLockModule, LockService, type LockEvent } from '../../../lib/index.js';
import { EtcdLockTestingModule, InMemoryLockClient } from '../../../lib/testing/index.js';
import { waitFor } from '../../support/wait.js';
import { OrdersController } from '../../nest/fixtures/orders.controller.js';
import { OrdersService } from '../../nest/fixtures/orders.service.js';
import { OverlapTracker } from '../../nest/fixtures/overlap-tracker.js';

/** An application module as users write it, configured for a real etcd that the test never starts. */
@Module({
  imports: [EtcdLockModule.forRoot({ hosts: 'http://127.0.0.1:1', logger: false })],
  controllers: [OrdersController],
  providers: [OverlapTracker, OrdersService],
})
class AppModule {}

describe('an application tested without etcd (ETCD_LOCK_CLIENT overridden with InMemoryLockClient)', () => {
  let app: INestApplication;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
      .overrideProvider(ETCD_LOCK_CLIENT)
      .useValue(new InMemoryLockClient())
      .compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
  });
  afterAll(async () => {
    await app?.close();
  });

  it('serializes @Locked handlers in memory, with rising fencing tokens', async () => {
    const server = app.getHttpServer();
    const responses = await Promise.all(Array.from({ length: 5 }, () => request(server).post('/orders/M1/pay')));
    expect(responses.map(r => r.status)).toEqual([201, 201, 201, 201, 201]);
    const tracker = app.get(OverlapTracker);
    expect(tracker.maxInside.get('order:M1')).toBe(1);
    const tokens = responses.map(r => BigInt(r.body.token)).sort((a, b) => (a < b ? -1 : 1));
    expect(new Set(tokens).size).toBe(5);
  });

  it('lets a test make a held lock be lost: the handler fails with 503 and its signal aborts', async () => {
    const controller = app.get(OrdersController);
    const before = controller.signals.length;
    const pending = request(app.getHttpServer())
      .post('/orders/M2/slow')
      .then(r => r);
    await waitFor(() => controller.signals.length === before + 1, { message: 'handler started' });
    app.get<InMemoryLockClient>(ETCD_LOCK_CLIENT).loseLock('order:M2');
    const res = await pending;
    expect(res.status).toBe(503);
    expect(res.body.error).toBe('LockLostError');
    expect(controller.signals[before].aborted).toBe(true);
  });

  it('streams lock events and inspects queues through LockService', async () => {
    const locks = app.get(LockService);
    const events: LockEvent[] = [];
    const subscription = locks.events$.subscribe(event => events.push(event));
    const held = await locks.acquire('report');
    const waiting = locks.acquire('report');
    const view = await locks.inspect('report');
    expect(view.holder?.key).toBe(held.key);
    expect(view.waiters).toHaveLength(1);
    await held.release();
    await (await waiting).release();
    subscription.unsubscribe();
    expect(events.map(e => e.type)).toEqual(['acquired', 'waiting', 'released', 'acquired', 'released']);
  });
});

describe('EtcdLockTestingModule', () => {
  it('provides LockService, @Locked and the in-memory client to composed test modules', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [EtcdLockTestingModule.forRoot()],
      controllers: [OrdersController],
      providers: [OverlapTracker, OrdersService],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    try {
      expect(await app.get(OrdersService).settle({ id: 'T9' })).toBe('settled T9');
      const res = await request(app.getHttpServer()).post('/orders/by-body').send({});
      expect(res.status).toBe(400);
      expect(app.get(InMemoryLockClient)).toBe(app.get(LockService).client);
    } finally {
      await app.close();
    }
  });
});
