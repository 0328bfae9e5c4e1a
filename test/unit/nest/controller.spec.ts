import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { LockLostError } from '../../../lib/index.js';
import { InMemoryLockClient } from '../../../lib/testing/index.js';
import { waitFor } from '../../support/wait.js';
import { OrdersController } from '../../nest/fixtures/orders.controller.js';
import { OverlapTracker } from '../../nest/fixtures/overlap-tracker.js';
import { createInMemoryOrdersApp } from '../../nest/fixtures/test-app.js';
import { WrappedController } from '../../nest/fixtures/wrapped.controller.js';

/** @Locked on controller handlers (the interceptor), over the in-memory client. */
describe('@Locked on controller handlers', () => {
  let app: INestApplication;
  let client: InMemoryLockClient;
  let tracker: OverlapTracker;

  beforeAll(async () => {
    app = await createInMemoryOrdersApp({}, { controllers: [WrappedController] });
    client = app.get(InMemoryLockClient);
    tracker = app.get(OverlapTracker);
  });
  afterAll(async () => {
    await app?.close();
  });
  beforeEach(() => tracker.reset());

  const server = () => app.getHttpServer();
  const held = async (resource: string) => (await client.inspect(resource)).holder !== undefined;

  it('serializes concurrent requests on one id', async () => {
    const responses = await Promise.all(Array.from({ length: 10 }, () => request(server()).post('/orders/A1/pay')));
    expect(responses.map(r => r.status)).toEqual(Array(10).fill(201));
    expect(tracker.maxInside.get('order:A1')).toBe(1);
  });

  it('gives each request on one id a higher fencing token than the one before', async () => {
    await Promise.all(Array.from({ length: 10 }, () => request(server()).post('/orders/A2/pay')));
    const tokens = tracker.entries.map(e => e.token!);
    expect(tokens).toHaveLength(10);
    for (let i = 1; i < tokens.length; i++) expect(tokens[i] > tokens[i - 1]).toBe(true);
  });

  it('runs requests on different ids in parallel', async () => {
    let inside = 0;
    let max = 0;
    const original = tracker.run.bind(tracker);
    tracker.run = (key, work, token) => original(key, async () => ((max = Math.max(max, ++inside)), work().finally(() => inside--)), token);
    try {
      await Promise.all(Array.from({ length: 10 }, (_, i) => request(server()).post(`/orders/P${i}/pay`).expect(201)));
    } finally {
      tracker.run = original;
    }
    // With a lock per id the 10 ms sections overlap; a global lock would allow none.
    expect(max).toBeGreaterThan(1);
  });

  it('holds the lock until an Observable handler completes', async () => {
    const [a, b] = await Promise.all([request(server()).get('/orders/S1/stream'), request(server()).get('/orders/S1/stream')]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(tracker.maxInside.get('order:S1')).toBe(1);
  });

  it('holds the lock for the whole SSE stream', async () => {
    const done = request(server())
      .get('/orders/E1/events')
      .buffer(true)
      .then(r => r);
    await waitFor(() => held('order:E1'), { message: 'SSE lock taken' });
    expect((await done).text.match(/data:/g)).toHaveLength(5);
    expect(await held('order:E1')).toBe(false);
  });

  it('answers 409 with Retry-After: 1 when a try-only lock is busy', async () => {
    const lock = await client.acquire('order:T1');
    try {
      const busy = await request(server()).post('/orders/T1/try');
      expect(busy.status).toBe(409);
      expect(busy.headers['retry-after']).toBe('1');
      expect(busy.body).toMatchObject({ statusCode: 409, error: 'LockBusyError' });
    } finally {
      await lock.release();
    }
  });

  it('leaves no queue entry behind when a try-only lock was busy', async () => {
    const lock = await client.acquire('order:T2');
    await request(server()).post('/orders/T2/try').expect(409);
    expect((await client.inspect('order:T2')).waiters).toEqual([]);
    await lock.release();
  });

  it('answers 400 naming the value when a template value is missing, instead of locking "order:undefined"', async () => {
    const res = await request(server()).post('/orders/by-body').send({});
    expect(res.status).toBe(400);
    expect(res.body.message).toContain('body.orderId is missing');
    expect(await held('order:undefined')).toBe(false);
  });

  it('answers 400 naming the value when a template value is empty', async () => {
    const res = await request(server()).post('/orders/by-body').send({ orderId: '' });
    expect(res.status).toBe(400);
    expect(res.body.message).toContain('body.orderId is empty');
  });

  it('lets a handler call a service method locked on the same key without deadlock', async () => {
    const res = await request(server()).post('/orders/N1/settle');
    expect(res.status).toBe(201);
    expect(res.text).toBe('settled N1');
  });

  it.each(['above', 'below'])('locks the request once, keyed from the request, with a wrapping decorator %s @Locked', async where => {
    const res = await request(server()).post(`/wrapped/W1/${where}`);
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ id: 'W1', held: true });
  });

  describe('when the lock is lost while the handler runs', () => {
    const lose = async (id: string) => {
      const controller = app.get(OrdersController);
      const before = controller.signals.length;
      const response = request(server())
        .post(`/orders/${id}/slow`)
        .then(r => r);
      await waitFor(() => controller.signals.length === before + 1, { message: 'handler started' });
      client.loseLock(`order:${id}`);
      return { response: await response, signal: controller.signals[before] };
    };

    it('answers 503 LockLostError', async () => {
      const { response } = await lose('L1');
      expect(response.status).toBe(503);
      expect(response.body.error).toBe('LockLostError');
    });

    it("aborts the handler's lock signal with the LockLostError", async () => {
      const { signal } = await lose('L2');
      expect(signal.aborted).toBe(true);
      expect(signal.reason).toBeInstanceOf(LockLostError);
    });
  });
});
