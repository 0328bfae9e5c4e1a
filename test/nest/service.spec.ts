import { jest } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { EtcdLockClient, ETCD_LOCK_CLIENT, LockService, LockTimeoutError } from '../../lib/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { OrdersService } from './fixtures/orders.service.js';
import { OverlapTracker } from './fixtures/overlap-tracker.js';
import { createOrdersApp, uniquePrefix } from './fixtures/test-app.js';

jest.setTimeout(30_000);

/** Smoke tests on etcd; the behaviour is specified in test/unit/nest/provider.spec.ts. */
describe('@Locked on provider methods and LockService (real etcd)', () => {
  let etcd: EtcdCluster;
  let app: INestApplication;
  let orders: OrdersService;
  let tracker: OverlapTracker;
  let prefix: string;

  beforeAll(async () => {
    etcd = await startEtcd();
    prefix = uniquePrefix('service');
    app = await createOrdersApp({ hosts: etcd.endpoints, prefix, ttl: 5, waitTimeout: 1000 });
    orders = app.get(OrdersService);
    tracker = app.get(OverlapTracker);
  });
  afterAll(async () => {
    await app?.close();
    await etcd?.close();
  });
  beforeEach(() => tracker.reset());

  const keys = async (under = '') =>
    app
      .get<EtcdLockClient>(ETCD_LOCK_CLIENT)
      .etcd.getAll()
      .prefix(prefix + under)
      .keys();

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
    const outer = await locks.withLock(
      'order:R1',
      async lock => {
        const inner = await orders.settleTwice('R1');
        // Still held by the outer call after the nested ones returned.
        expect(await keys('order:R1/')).toEqual([lock.key]);
        return inner;
      },
      { waitTimeout: 2000 },
    );
    expect(outer).toEqual(['settled R1', 'settled R1']);
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
