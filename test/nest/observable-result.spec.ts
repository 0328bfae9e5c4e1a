import { jest } from '@jest/globals';
import { Injectable, type INestApplication } from '@nestjs/common';
import { Observable, Subject, from, lastValueFrom, mergeAll, tap, toArray, type ObservableInput } from 'rxjs';
import { Locked, LockService } from '../../lib/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { createOrdersApp, uniquePrefix } from './fixtures/test-app.js';

jest.setTimeout(30_000);

/** Emits 'open', completes when `done` emits. */
function until(done: Observable<unknown>): Observable<string> {
  return new Observable<string>(subscriber => {
    subscriber.next('open');
    const closing = done.subscribe(() => subscriber.complete());
    return () => closing.unsubscribe();
  });
}

@Injectable()
class UnannotatedStreams {
  // No return type written: TypeScript emits design:returntype undefined.
  @Locked('stream:{0}')
  open(_id: string, done: Observable<unknown>) {
    return until(done);
  }
}

/** As esbuild, tsx or swc without decorator metadata compile it: no design:* metadata at all. */
class StrippedStreams {
  open(_id: string, done: Observable<unknown>) {
    return until(done);
  }
}
Injectable()(StrippedStreams);
Object.defineProperty(
  StrippedStreams.prototype,
  'open',
  Locked('stream:{0}')(StrippedStreams.prototype, 'open', Object.getOwnPropertyDescriptor(StrippedStreams.prototype, 'open')!) as PropertyDescriptor,
);

/**
 * Without a declared return type @Locked cannot know before the call that a method returns a
 * stream; the call gives a Promise of the stream (as an async method would), and the stream
 * must still run under the lock.
 */
describe('@Locked provider methods whose Observable result is known only at run time (real etcd)', () => {
  let etcd: EtcdCluster;
  let app: INestApplication;
  let locks: LockService;

  beforeAll(async () => {
    etcd = await startEtcd();
    app = await createOrdersApp({ hosts: etcd.endpoints, prefix: uniquePrefix('observable'), ttl: 5 }, { providers: [UnannotatedStreams, StrippedStreams] });
    locks = app.get(LockService);
  });
  afterAll(async () => {
    await app?.close();
    await etcd?.close();
  });

  it.each([
    ['without a return type annotation', 'U1', () => app.get(UnannotatedStreams)],
    ['compiled without decorator metadata', 'S1', () => app.get(StrippedStreams)],
  ])('holds the lock while the stream runs: %s', async (_name, id, service) => {
    expect(Reflect.getMetadata('design:returntype', Object.getPrototypeOf(service()), 'open')).toBeUndefined();
    const done = new Subject<void>();
    const result = service().open(id, done) as unknown as ObservableInput<Observable<string>>;
    let opened = false;
    const values = lastValueFrom(from(result).pipe(mergeAll(), tap(() => (opened = true)), toArray()));
    await waitFor(() => opened, { message: 'the stream emitted' });
    // The stream is live (it completes only when `done` emits): its lock must be held.
    expect((await locks.inspect(`stream:${id}`)).holder).toBeDefined();
    done.next();
    expect(await values).toEqual(['open']);
    await waitFor(async () => (await locks.inspect(`stream:${id}`)).holder === undefined, { message: 'released at completion' });
  });
});
