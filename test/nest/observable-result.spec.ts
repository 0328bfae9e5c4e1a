import { jest } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { Subject, from, lastValueFrom, mergeAll, tap, toArray, type Observable, type ObservableInput } from 'rxjs';
import { LockService } from '../../lib/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { StrippedStreams } from './fixtures/runtime-streams.js';
import { createOrdersApp, uniquePrefix } from './fixtures/test-app.js';

jest.setTimeout(30_000);

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
    app = await createOrdersApp({ hosts: etcd.endpoints, prefix: uniquePrefix('observable'), ttl: 5 }, { providers: [StrippedStreams] });
    locks = app.get(LockService);
  });
  afterAll(async () => {
    await app?.close();
    await etcd?.close();
  });

  // The unannotated case, and both in memory: test/unit/nest/provider.spec.ts.
  it('holds the lock while the stream of a method compiled without decorator metadata runs', async () => {
    const id = 'S1';
    const service = () => app.get(StrippedStreams);
    expect(Reflect.getMetadata('design:returntype', Object.getPrototypeOf(service()), 'open')).toBeUndefined();
    const done = new Subject<void>();
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
    // The stream is live (it completes only when `done` emits): its lock must be held.
    expect((await locks.inspect(`stream:${id}`)).holder).toBeDefined();
    done.next();
    expect(await values).toEqual(['open']);
    await waitFor(async () => (await locks.inspect(`stream:${id}`)).holder === undefined, { message: 'released at completion' });
  });
});
