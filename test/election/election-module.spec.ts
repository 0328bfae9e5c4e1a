/**
 * `EtcdLockModule` with `election: { value }` on real etcd: two applications campaign at
 * bootstrap, one leads and runs `@LeaderOnly`; on its shutdown it resigns and the other leads at once.
 */
import { Injectable, Module, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { ElectionService, EtcdLockModule, LeaderOnly } from '../../lib/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';

@Injectable()
class Job {
  @LeaderOnly()
  run(): string {
    return 'ran';
  }
}

describe('EtcdLockModule elections on etcd', () => {
  let etcd: EtcdCluster;
  const apps: INestApplication[] = [];

  async function app(value: string): Promise<INestApplication> {
    @Module({ imports: [EtcdLockModule.forRoot({ hosts: etcd.endpoints, ttl: 5, logger: false, election: { value } })], providers: [Job] })
    class AppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const nest = moduleRef.createNestApplication({ logger: false });
    await nest.init();
    apps.push(nest);
    return nest;
  }

  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await Promise.all(apps.map(a => a.close()));
    await etcd?.close();
  });

  it('one application leads; it resigns on shutdown and the other leads well within the TTL', async () => {
    const a = await app('a');
    await waitFor(() => a.get(ElectionService).isLeader(), { message: 'a leads' });
    const b = await app('b');
    await waitFor(async () => (await b.get(ElectionService).leader('default'))?.value === 'a', { message: 'b sees a' });
    expect(a.get(Job).run()).toBe('ran');
    expect(b.get(Job).run()).toBeUndefined();
    const token = a.get(ElectionService).leadership()!.fencingToken;

    const closedAt = performance.now();
    await a.close();
    await waitFor(() => b.get(ElectionService).isLeader(), { timeoutMs: 2000, message: 'b leads' });
    expect(performance.now() - closedAt).toBeLessThan(2000); // resigned: not the 5 s TTL
    expect(b.get(ElectionService).leadership()!.fencingToken).toBeGreaterThan(token);
    expect(b.get(Job).run()).toBe('ran');
  });
});
