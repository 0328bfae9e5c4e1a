import { jest } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Subject, firstValueFrom, toArray } from 'rxjs';
import { EtcdLockClient, ETCD_LOCK_CLIENT, LockService, LockTimeoutError } from '../../lib/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { track } from '../core/helpers.js';
import { OrderRejected, OrdersService } from './fixtures/orders.service.js';
import { OverlapTracker } from './fixtures/overlap-tracker.js';
import { createOrdersApp, uniquePrefix } from './fixtures/test-app.js';

jest.setTimeout(30_000);

describe('@Locked on provider methods and LockService (real etcd)', () => {
  let etcd: EtcdCluster;
  let app: INestApplication;
  let orders: OrdersService;
  let tracker: OverlapTracker;
  let prefix: string;

  beforeAll(async () => {
    etcd = await startEtcd();
    prefix = uniquePrefix('service');
    // The default wait timeout: tests here queue up to 20 calls on one lock, and a 1 s budget for
    // the last of them was a throughput assumption (twenty handoffs took longer at load 15).
    app = await createOrdersApp({ hosts: etcd.endpoints, prefix, ttl: 5 });
    orders = app.get(OrdersService);
    tracker = app.get(OverlapTracker);
  });
  afterAll(async () => {
    await app?.close();
    await etcd?.close();
  });
  beforeEach(() => tracker.reset());

  const keys = async (under = '') => app.get<EtcdLockClient>(ETCD_LOCK_CLIENT).etcd.getAll().prefix(prefix + under).keys();

  it('serializes calls with keys built from the arguments', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => orders.settle({ id: 'S1' })));
    expect(results).toEqual(Array(8).fill('settled S1'));
    expect(tracker.maxInside.get('order:S1')).toBe(1);
    const tokens = tracker.entries.map(e => e.token!);
    for (let i = 1; i < tokens.length; i++) expect(tokens[i] > tokens[i - 1]).toBe(true);
    expect(await keys()).toEqual([]);
  });

  it('re-enters a lock the call chain holds, and releases it only after the outermost call', async () => {
    const locks = app.get(LockService);
    const outer = await locks.withLock('order:R1', async lock => {
      const inner = await orders.settleTwice('R1');
      // Still held by the outer call after the nested ones returned.
      expect(await keys('order:R1/')).toEqual([lock.key]);
      return inner;
    }, { waitTimeout: 2000 });
    expect(outer).toEqual(['settled R1', 'settled R1']);
    expect(await keys()).toEqual([]);
  });

  it('does not re-enter across unrelated call chains', async () => {
    const locks = app.get(LockService);
    const held = await locks.acquire('order:X1');
    const nested = track(orders.settleTwice('X1'));
    // It queues behind the unrelated holder instead of borrowing its lock ...
    await waitFor(async () => (await keys('order:X1/')).length === 2, { message: 'settleTwice queued behind the holder' });
    expect(nested.outcome.status).toBe('pending');
    // ... and runs once that holder lets go, under a lock of its own.
    await held.release();
    expect(await nested.promise).toEqual(['settled X1', 'settled X1']);
    expect(tracker.entries.map(e => e.token! > held.fencingToken)).toEqual([true, true]);
  });

  it('runs transfers in both directions at once without deadlock, and loses no money', async () => {
    orders.balances.set('a', 1000).set('b', 1000);
    const moves = Array.from({ length: 20 }, (_, i) => (i % 2 ? orders.transfer('a', 'b', 3) : orders.transfer('b', 'a', 5)));
    await Promise.all(moves);
    expect(orders.balances.get('a')! + orders.balances.get('b')!).toBe(2000);
    expect(orders.balances.get('a')).toBe(1000 - 10 * 3 + 10 * 5);
    expect(tracker.maxInside.get('account:a')).toBe(1);
    expect(tracker.maxInside.get('account:b')).toBe(1);
    expect(await keys()).toEqual([]);
  });

  it('gives a LockSet for a list key, even when its names coincide', async () => {
    expect(await orders.pairLockKind('x', 'y')).toBe('LockSet');
    expect(await orders.pairLockKind('x', 'x')).toBe('LockSet');
  });

  it("passes the method's own errors through unchanged and releases the lock", async () => {
    const error = await orders.fail('F1').catch(e => e);
    expect(error).toBeInstanceOf(OrderRejected);
    expect(error.message).toBe('order F1 rejected');
    expect(await keys()).toEqual([]);
  });

  it('keeps metadata declared above and below @Locked, and the method name', () => {
    const method = OrdersService.prototype.fail;
    expect(Reflect.getMetadata('role', method)).toBe('above');
    expect(Reflect.getMetadata('audit', method)).toBe('below');
    expect(method.name).toBe('fail');
  });

  it('holds the lock of an Observable-returning method until the stream completes', async () => {
    const done = new Subject<void>();
    const values = firstValueFrom(orders.streamUntil('T1', done).pipe(toArray()));
    await waitFor(async () => (await keys('stream:T1/')).length === 1, { message: 'stream lock taken' });
    // Still held while the stream is live, however long the check above took.
    expect(await keys('stream:T1/')).toHaveLength(1);
    done.next();
    expect(await values).toEqual(['open']);
    expect(await keys()).toEqual([]);
  });

  it('times out with LockTimeoutError when the lock stays held', async () => {
    const locks = app.get(LockService);
    const held = await locks.acquire('slow-job');
    const error = await locks.withLock('slow-job', () => 'never', { waitTimeout: 200 }).catch(e => e);
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(error.message).toBe('Timed out after 200 ms waiting for lock "slow-job"');
    await held.release();
    await waitFor(async () => (await keys()).length === 0, { message: 'no keys left' });
  });
});
