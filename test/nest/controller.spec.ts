import { jest } from '@jest/globals';
import { Injectable, type CallHandler, type ExecutionContext, type INestApplication, type NestInterceptor } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import request from 'supertest';
import { catchError, throwError, type Observable } from 'rxjs';
import { EtcdLockClient, ETCD_LOCK_CLIENT, LockLostError } from '../../lib/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { OrdersController } from './fixtures/orders.controller.js';
import { OverlapTracker } from './fixtures/overlap-tracker.js';
import { createOrdersApp, uniquePrefix } from './fixtures/test-app.js';

jest.setTimeout(30_000);

/** Sits outside the lock interceptor and records what errors come down the handler's stream. */
@Injectable()
class StreamErrorRecorder implements NestInterceptor {
  static readonly seen: unknown[] = [];
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(catchError(err => (StreamErrorRecorder.seen.push(err), throwError(() => err))));
  }
}

/** Smoke tests on etcd; the interceptor's behaviour is specified in test/unit/nest/controller.spec.ts. */
describe('@Locked on controller handlers (real etcd)', () => {
  let etcd: EtcdCluster;
  let app: INestApplication;
  let prefix: string;

  beforeAll(async () => {
    etcd = await startEtcd();
    prefix = uniquePrefix('controller');
    app = await createOrdersApp({ hosts: etcd.endpoints, prefix, ttl: 5 });
  });
  afterAll(async () => {
    await app?.close();
    await etcd?.close();
  });
  beforeEach(() => app.get(OverlapTracker).reset());

  const keysLeft = async () => (await app.get<EtcdLockClient>(ETCD_LOCK_CLIENT).etcd.getAll().prefix(prefix).keys()).length;

  it('serializes 20 concurrent requests on one id, with rising fencing tokens', async () => {
    const server = app.getHttpServer();
    const responses = await Promise.all(Array.from({ length: 20 }, () => request(server).post('/orders/A1/pay')));
    expect(responses.map(r => r.status)).toEqual(Array(20).fill(201));
    const tracker = app.get(OverlapTracker);
    expect(tracker.maxInside.get('order:A1')).toBe(1);
    const tokens = tracker.entries.map(e => e.token!);
    expect(tokens).toHaveLength(20);
    for (let i = 1; i < tokens.length; i++) expect(tokens[i] > tokens[i - 1]).toBe(true);
    expect(await keysLeft()).toBe(0);
  });

  it('holds the lock for the whole SSE stream', async () => {
    const client = app.get<EtcdLockClient>(ETCD_LOCK_CLIENT);
    const server = app.getHttpServer();
    const sse = request(server).get('/orders/E1/events').buffer(true);
    const done = sse.then(r => r);
    await waitFor(async () => (await client.etcd.getAll().prefix(`${prefix}order:E1/`).keys()).length === 1, { message: 'SSE lock taken' });
    const res = await done;
    expect(res.text.match(/data:/g)).toHaveLength(5);
    expect(await keysLeft()).toBe(0);
  });

  it('answers 409 with Retry-After when a try-only lock is busy, and leaves no key', async () => {
    const server = app.getHttpServer();
    const first = request(server)
      .post('/orders/T1/try')
      .then(r => r);
    const client = app.get<EtcdLockClient>(ETCD_LOCK_CLIENT);
    await waitFor(async () => (await client.etcd.getAll().prefix(`${prefix}order:T1/`).keys()).length === 1, { message: 'first holds T1' });
    const busy = await request(server).post('/orders/T1/try');
    expect(busy.status).toBe(409);
    expect(busy.headers['retry-after']).toBe('1');
    expect(busy.body).toMatchObject({ statusCode: 409, error: 'LockBusyError' });
    expect((await first).status).toBe(201);
    expect(await keysLeft()).toBe(0);
  });
});

describe('lease loss while a handler runs (real etcd, paused past the TTL)', () => {
  let etcd: EtcdCluster;
  let app: INestApplication;

  beforeAll(async () => {
    etcd = await startEtcd();
    app = await createOrdersApp(
      { hosts: etcd.endpoints, prefix: uniquePrefix('loss'), ttl: 2, requestTimeout: 500 },
      { providers: [{ provide: APP_INTERCEPTOR, useClass: StreamErrorRecorder }] },
    );
  });
  afterAll(async () => {
    etcd?.members[0].resume();
    await app?.close();
    await etcd?.close();
  });

  it('errors the stream with LockLostError (503) and aborts the handler signal', async () => {
    const controller = app.get(OrdersController);
    const pending = request(app.getHttpServer())
      .post('/orders/L1/slow')
      .then(r => r);
    await waitFor(() => controller.signals.length === 1, { message: 'handler started' });
    const started = performance.now();
    etcd.members[0].pause();
    const res = await pending;
    const elapsed = performance.now() - started;
    etcd.members[0].resume();

    expect(res.status).toBe(503);
    expect(res.body.error).toBe('LockLostError');
    expect(controller.signals[0].aborted).toBe(true);
    expect(controller.signals[0].reason).toBeInstanceOf(LockLostError);
    // The error came down the handler's RxJS stream (seen by an outer interceptor) ...
    expect(StreamErrorRecorder.seen.some(e => e instanceof LockLostError)).toBe(true);
    // ... within the TTL, not after etcd3's 2×TTL.
    expect(elapsed).toBeLessThan(2000);
  });
});
