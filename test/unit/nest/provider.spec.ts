import type { INestApplication } from '@nestjs/common';
import { Subject, firstValueFrom, from, lastValueFrom, mergeAll, tap, toArray, type Observable, type ObservableInput } from 'rxjs';
import { LockService, LockTimeoutError } from '../../../lib/index.js';
import { InMemoryLockClient } from '../../../lib/testing/index.js';
import { waitFor } from '../../support/wait.js';
import { OrderRejected, OrdersService } from '../../nest/fixtures/orders.service.js';
import { OverlapTracker } from '../../nest/fixtures/overlap-tracker.js';
import { StrippedStreams, UnannotatedStreams } from '../../nest/fixtures/runtime-streams.js';
import { createInMemoryOrdersApp } from '../../nest/fixtures/test-app.js';

/** @Locked on provider methods (no interceptor reaches them) and LockService.withLock, over the in-memory client. */
describe('@Locked on provider methods and LockService', () => {
  let app: INestApplication;
  let orders: OrdersService;
  let tracker: OverlapTracker;
  let locks: LockService;
  let client: InMemoryLockClient;

  beforeAll(async () => {
    app = await createInMemoryOrdersApp({ waitTimeout: 300 }, { providers: [UnannotatedStreams, StrippedStreams] });
    orders = app.get(OrdersService);
    tracker = app.get(OverlapTracker);
    locks = app.get(LockService);
    client = app.get(InMemoryLockClient);
  });
  afterAll(async () => {
    await app?.close();
  });
  beforeEach(() => tracker.reset());

  const holderKey = async (resource: string) => (await client.inspect(resource)).holder?.key;

  it('serializes calls with keys built from the arguments', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => orders.settle({ id: 'S1' })));
    expect(results).toEqual(Array(8).fill('settled S1'));
    expect(tracker.maxInside.get('order:S1')).toBe(1);
  });

  it('gives each serialized call a higher fencing token than the one before', async () => {
    await Promise.all(Array.from({ length: 8 }, () => orders.settle({ id: 'S2' })));
    const tokens = tracker.entries.map(e => e.token!);
    for (let i = 1; i < tokens.length; i++) expect(tokens[i] > tokens[i - 1]).toBe(true);
  });

  it('re-enters a lock the call chain holds', async () => {
    const outer = await locks.withLock('order:R1', () => orders.settleTwice('R1'));
    expect(outer).toEqual(['settled R1', 'settled R1']);
  });

  it('keeps a re-entered lock held by the outer call after the nested calls returned', async () => {
    await locks.withLock('order:R2', async lock => {
      await orders.settleTwice('R2');
      expect(await holderKey('order:R2')).toBe(lock.key);
    });
    expect(await holderKey('order:R2')).toBeUndefined();
  });

  it('does not re-enter across unrelated call chains', async () => {
    const held = await locks.acquire('order:X1');
    await expect(orders.settleTwice('X1')).rejects.toBeInstanceOf(LockTimeoutError);
    await held.release();
  });

  it('runs transfers in both directions at once without deadlock, and loses no money', async () => {
    orders.balances.set('a', 1000).set('b', 1000);
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? orders.transfer('a', 'b', 3) : orders.transfer('b', 'a', 5))));
    expect(orders.balances.get('a')! + orders.balances.get('b')!).toBe(2000);
    expect(orders.balances.get('a')).toBe(1000 - 10 * 3 + 10 * 5);
  });

  it('never lets two transfers inside one account at once', async () => {
    await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? orders.transfer('c', 'd', 1) : orders.transfer('d', 'c', 1))));
    expect(tracker.maxInside.get('account:c')).toBe(1);
    expect(tracker.maxInside.get('account:d')).toBe(1);
  });

  it.each([
    ['distinct', 'x', 'y'],
    ['coinciding', 'x', 'x'],
  ])('gives a LockSet for a list key whose names are %s', async (_names, a, b) => {
    expect(await orders.pairLockKind(a, b)).toBe('LockSet');
  });

  it("passes the method's own errors through unchanged", async () => {
    const error = await orders.fail('F1').catch(e => e);
    expect(error).toBeInstanceOf(OrderRejected);
    expect(error.message).toBe('order F1 rejected');
  });

  it('releases the lock when the method throws', async () => {
    await orders.fail('F2').catch(() => undefined);
    expect(await holderKey('order:F2')).toBeUndefined();
  });

  it('keeps metadata declared above and below @Locked, and the method name', () => {
    const method = OrdersService.prototype.fail;
    expect(Reflect.getMetadata('role', method)).toBe('above');
    expect(Reflect.getMetadata('audit', method)).toBe('below');
    expect(method.name).toBe('fail');
  });

  it('holds the lock of an Observable-returning method until the stream completes', async () => {
    const done = new Subject<void>();
    let opened = false;
    const values = firstValueFrom(
      orders.streamUntil('T1', done).pipe(
        tap(() => (opened = true)),
        toArray(),
      ),
    );
    await waitFor(() => opened, { message: 'the stream emitted' });
    expect(await holderKey('stream:T1')).toBeDefined();
    done.next();
    expect(await values).toEqual(['open']);
    expect(await holderKey('stream:T1')).toBeUndefined();
  });

  it.each([
    ['without a return type annotation', 'U1', () => app.get(UnannotatedStreams)],
    ['compiled without decorator metadata', 'S1', () => app.get(StrippedStreams)],
  ])('holds the lock while a stream known only at run time runs: %s', async (_name, id, service) => {
    expect(Reflect.getMetadata('design:returntype', Object.getPrototypeOf(service()), 'open')).toBeUndefined();
    const done = new Subject<void>();
    // No declared return type: the call gives a Promise of the stream, as an async method would.
    const result = service().open(id, done) as unknown as ObservableInput<Observable<string>>;
    let opened = false;
    const values = lastValueFrom(
      from(result).pipe(
        mergeAll(),
        tap(() => (opened = true)),
        toArray(),
      ),
    );
    await waitFor(() => opened, { message: 'the stream emitted' });
    expect(await holderKey(`stream:${id}`)).toBeDefined();
    done.next();
    expect(await values).toEqual(['open']);
    await waitFor(async () => (await holderKey(`stream:${id}`)) === undefined, { message: 'released at completion' });
  });

  it('times out with LockTimeoutError naming the wait and the resource when the lock stays held', async () => {
    const held = await locks.acquire('slow-job');
    const error = await locks.withLock('slow-job', () => 'never', { waitTimeout: 100 }).catch(e => e);
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(error.message).toBe('Timed out after 100 ms waiting for lock "slow-job"');
    await held.release();
  });
});
