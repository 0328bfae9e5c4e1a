import { jest } from '@jest/globals';
import { Controller, Get, Injectable, Param, Post, type INestApplication } from '@nestjs/common';
import request from 'supertest';
import { Observable } from 'rxjs';
import { EtcdLockClient, Locked, LockLostError, LockService } from '../../lib/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { spin } from './fixtures/gates.js';
import { pause } from './fixtures/overlap-tracker.js';
import { createOrdersApp, uniquePrefix } from './fixtures/test-app.js';

jest.setTimeout(30_000);

const TTL_S = 2;
/** Longer than the TTL: no renewal can be sent, and the lease's deadline passes inside the section. */
const BLOCKED_MS = 2500;

@Injectable()
class BlockingService {
  @Locked('blocking:{0}')
  async afterAwait(_id: string): Promise<string> {
    await pause(1);
    spin(BLOCKED_MS);
    return 'ok';
  }
}

@Controller('blocking')
class BlockingController {
  @Post(':id')
  @Locked('blocking:{params.id}')
  async promise(@Param('id') _id: string): Promise<string> {
    await pause(1);
    spin(BLOCKED_MS);
    return 'ok';
  }

  @Get(':id/stream')
  @Locked('blocking:{params.id}')
  stream(@Param('id') _id: string): Observable<string> {
    return new Observable<string>(subscriber => {
      const timer = setTimeout(() => {
        spin(BLOCKED_MS);
        subscriber.next('ok');
        subscriber.complete();
      }, 1);
      return () => clearTimeout(timer);
    });
  }
}

/**
 * A section counts as held throughout only if the lease was still valid when it settled. With
 * the event loop blocked past the TTL nothing can report the loss while the section runs, so the
 * check has to happen when it settles: each of these resolved 'ok' (or answered 200/201) before.
 */
describe('a section resolves only if its lock was held throughout (real etcd, event loop blocked past the TTL)', () => {
  let etcd: EtcdCluster;
  let app: INestApplication;
  let locks: LockService;
  let client: EtcdLockClient;

  beforeAll(async () => {
    etcd = await startEtcd();
    app = await createOrdersApp(
      { hosts: etcd.endpoints, prefix: uniquePrefix('held'), ttl: TTL_S },
      { providers: [BlockingService], controllers: [BlockingController] },
    );
    locks = app.get(LockService);
    client = new EtcdLockClient({ hosts: etcd.endpoints, prefix: uniquePrefix('held-core'), ttl: TTL_S });
  });
  afterAll(async () => {
    await client?.close();
    await app?.close();
    await etcd?.close();
  });

  it('LockService.withLock, blocked synchronously', async () => {
    await expect(locks.withLock('w1', () => (spin(BLOCKED_MS), 'ok'))).rejects.toBeInstanceOf(LockLostError);
  });

  it('LockService.withLock, blocked after an await', async () => {
    const section = async () => {
      await pause(1);
      spin(BLOCKED_MS);
      return 'ok';
    };
    await expect(locks.withLock('w2', section)).rejects.toBeInstanceOf(LockLostError);
  });

  it("the core client's withLock", async () => {
    await expect(client.withLock('w3', () => (spin(BLOCKED_MS), 'ok'))).rejects.toBeInstanceOf(LockLostError);
  });

  it('withLock on a list (a LockSet)', async () => {
    await expect(locks.withLock(['w4a', 'w4b'], () => (spin(BLOCKED_MS), 'ok'))).rejects.toBeInstanceOf(LockLostError);
  });

  it("LockSet.signal checks the lease deadline when read, as LockHandle's does", async () => {
    const set = await locks.acquire(['w5a', 'w5b']);
    try {
      spin(BLOCKED_MS);
      expect(set.signal.aborted).toBe(true);
      expect(set.signal.reason).toBeInstanceOf(LockLostError);
    } finally {
      await set.release();
    }
  });

  it('a provider @Locked method (Promise)', async () => {
    await expect(app.get(BlockingService).afterAwait('p1')).rejects.toBeInstanceOf(LockLostError);
  });

  it('a controller @Locked handler (Promise): 503', async () => {
    const res = await request(app.getHttpServer()).post('/blocking/c1');
    expect(res.status).toBe(503);
    expect(res.body.error).toBe('LockLostError');
  });

  it('a controller @Locked handler (Observable): 503', async () => {
    const res = await request(app.getHttpServer()).get('/blocking/c2/stream');
    expect(res.status).toBe(503);
    expect(res.body.error).toBe('LockLostError');
  });

  it('never lends a lost lock: a nested call on it fails with its LockLostError', async () => {
    let nested: unknown;
    const outer = locks.withLock('w7', async () => {
      spin(BLOCKED_MS);
      nested = await locks.withLock('w7', () => 'borrowed').catch(e => e);
    });
    await expect(outer).rejects.toBeInstanceOf(LockLostError);
    expect(nested).toBeInstanceOf(LockLostError);
  });

  it('still resolves a section that ends within the TTL', async () => {
    expect(await locks.withLock('w6', () => (spin(200), 'ok'))).toBe('ok');
  });
});
