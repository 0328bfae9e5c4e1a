import { jest } from '@jest/globals';
import { Injectable, Module, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  EtcdLockClient,
  EtcdLockModule,
  EtcdUnavailableError,
  ETCD_LOCK_CLIENT,
  InvalidLockArgumentError,
  LockService,
  type EtcdLockModuleOptions,
} from '../../lib/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { startWorker } from '../support/node-process.js';
import { waitFor } from '../support/wait.js';
import { Etcd3 } from 'etcd3';
import { uniquePrefix } from './fixtures/test-app.js';

jest.setTimeout(30_000);

/** Stands for an application's config module (as @nestjs/config would be). */
@Injectable()
class AppConfig {
  static hosts: string[] = [];
  readonly etcdHosts = AppConfig.hosts;
}
@Module({ providers: [AppConfig], exports: [AppConfig] })
class AppConfigModule {}

@Injectable()
class LockOptionsFactory {
  constructor(private readonly config: AppConfig) {}
  createEtcdLockOptions(): EtcdLockModuleOptions {
    return { hosts: this.config.etcdHosts, prefix: uniquePrefix('useClass'), logger: false };
  }
}
@Module({ imports: [AppConfigModule], providers: [LockOptionsFactory, AppConfig], exports: [LockOptionsFactory] })
class LockOptionsModule {}

/** A feature module that uses LockService without importing EtcdLockModule (needs isGlobal). */
@Injectable()
class FeatureService {
  constructor(readonly locks: LockService) {}
}
@Module({ providers: [FeatureService] })
class FeatureModule {}

async function boot(imports: any[]): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ imports }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

/** Proves a booted app's LockService really locks on etcd. */
async function assertLocks(app: INestApplication): Promise<void> {
  const locks = app.get(LockService);
  const token = await locks.withLock('probe', lock => lock.fencingToken);
  expect(typeof token).toBe('bigint');
  expect(locks.status().state).toBe('alive');
}

describe('EtcdLockModule configuration (real etcd)', () => {
  let etcd: EtcdCluster;
  beforeAll(async () => {
    etcd = await startEtcd();
    AppConfig.hosts = etcd.endpoints;
  });
  afterAll(async () => {
    await etcd?.close();
  });

  it('boots with forRoot, exactly as the README writes it', async () => {
    const url = etcd.endpoints[0];
    const app = await boot([EtcdLockModule.forRoot({ hosts: url, prefix: 'locks/', ttl: 10, logger: false })]);
    await assertLocks(app);
    expect(app.get<EtcdLockClient>(ETCD_LOCK_CLIENT).status().grantedTtl).toBe(10);
    await app.close();
  });

  it('boots with forRootAsync useFactory + inject + imports', async () => {
    const app = await boot([
      EtcdLockModule.forRootAsync({
        imports: [AppConfigModule],
        inject: [AppConfig],
        useFactory: (config: AppConfig) => ({ hosts: config.etcdHosts, prefix: uniquePrefix('useFactory'), logger: false }),
      }),
    ]);
    await assertLocks(app);
    await app.close();
  });

  it('boots with forRootAsync useClass', async () => {
    const app = await boot([EtcdLockModule.forRootAsync({ imports: [AppConfigModule], useClass: LockOptionsFactory })]);
    await assertLocks(app);
    await app.close();
  });

  it('boots with forRootAsync useExisting', async () => {
    const app = await boot([EtcdLockModule.forRootAsync({ imports: [LockOptionsModule], useExisting: LockOptionsFactory })]);
    await assertLocks(app);
    await app.close();
  });

  it('isGlobal makes LockService injectable in modules that do not import it', async () => {
    const app = await boot([
      EtcdLockModule.forRoot({ hosts: etcd.endpoints, prefix: uniquePrefix('global'), isGlobal: true, logger: false }),
      FeatureModule,
    ]);
    expect(app.get(FeatureService).locks).toBe(app.get(LockService));
    await app.close();
  });

  it('shares one etcd client and one lease across the application', async () => {
    const app = await boot([EtcdLockModule.forRoot({ hosts: etcd.endpoints, prefix: uniquePrefix('one'), logger: false })]);
    const locks = app.get(LockService);
    const [a, b] = await Promise.all([locks.acquire('one-a'), locks.acquire('one-b')]);
    expect(a.leaseId).toBe(b.leaseId);
    expect(locks.client).toBe(app.get(ETCD_LOCK_CLIENT));
    await Promise.all([a.release(), b.release()]);
    await app.close();
  });

  it.each([
    [false, 0],
    [true, 2],
  ])('logs lock events at debug level only with debug: %s', async (debug, expectedLines) => {
    const lines: string[] = [];
    const logger = { warn() {}, error() {}, debug: (line: string) => lines.push(line) };
    const app = await boot([EtcdLockModule.forRoot({ hosts: etcd.endpoints, prefix: uniquePrefix('debug'), logger, debug })]);
    await app.get(LockService).withLock('logged', () => undefined);
    await app.close();
    const events = lines.filter(line => line.includes('"logged"'));
    expect(events).toHaveLength(expectedLines);
    if (debug) expect(events[0]).toMatch(/^acquired "logged" after [\d.]+ ms, fencing token \d+$/);
  });

  it.each([
    [{ ttl: 0 }, 'Invalid ttl: expected a whole number of seconds >= 1, got number 0'],
    [{ ttl: 1.5 }, 'Invalid ttl'],
    [{ hosts: [] }, 'Invalid hosts'],
    [{ hosts: 'not a url' }, 'Invalid hosts'],
    [{ waitTimeout: -1 }, 'Invalid waitTimeout'],
    [{ prefix: 42 }, 'Invalid prefix'],
    [{ tll: 10 }, 'Invalid tll: unknown option'],
  ])('fails at bootstrap naming the field for %j', async (options, message) => {
    const error = await boot([EtcdLockModule.forRoot({ hosts: etcd.endpoints, logger: false, ...(options as object) })]).catch(e => e);
    expect(error).toBeInstanceOf(InvalidLockArgumentError);
    expect(error.message).toContain(message);
  });

  it('fails at bootstrap with EtcdUnavailableError within dialTimeout when etcd is unreachable', async () => {
    const started = performance.now();
    const error = await boot([EtcdLockModule.forRoot({ hosts: 'http://127.0.0.1:1', dialTimeout: 1000, logger: false })]).catch(e => e);
    expect(error).toBeInstanceOf(EtcdUnavailableError);
    expect(error.message).toMatch(/^etcd unavailable: granting the session lease/);
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('boots without etcd when lazyConnect is set, and fails on first use instead', async () => {
    const app = await boot([EtcdLockModule.forRoot({ hosts: 'http://127.0.0.1:1', lazyConnect: true, dialTimeout: 500, logger: false })]);
    await expect(app.get(LockService).acquire('x')).rejects.toBeInstanceOf(EtcdUnavailableError);
    await app.close();
  });
});

describe('graceful shutdown (real etcd, waiter in another process)', () => {
  let etcd: EtcdCluster;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.close();
  });

  it('leaves no key behind and frees a waiting process at once, well under the TTL', async () => {
    const prefix = uniquePrefix('shutdown');
    const ttl = 10;
    const app = await boot([EtcdLockModule.forRoot({ hosts: etcd.endpoints, prefix, ttl, logger: false })]);
    app.enableShutdownHooks();
    const locks = app.get(LockService);
    const held = await Promise.all(['job:1', 'job:2', 'job:3'].map(r => locks.acquire(r)));
    const probe = new Etcd3({ hosts: etcd.endpoints });
    const waiter = startWorker('lock-waiter', [etcd.endpoints.join(','), prefix, 'job:1', String(ttl)]);
    try {
      await waiter.next(m => m.event === 'queued');
      await waitFor(async () => (await probe.getAll().prefix(prefix).keys()).length === 4, { message: 'waiter queued behind us' });
      const closedAt = Date.now();
      await app.close();
      const acquired = await waiter.next(m => m.event === 'acquired', 5000);
      const waitedMs = (acquired.at as number) - closedAt;
      console.log(`waiter acquired ${waitedMs} ms after app.close() (TTL ${ttl} s)`);
      expect(waitedMs).toBeLessThan(1000);
      expect(held.every(h => h.signal.aborted)).toBe(true);
      // Only the waiter's key is left: none of the closed application's.
      const left = await probe.getAll().prefix(prefix).keys();
      expect(left).toHaveLength(1);
      expect(held.map(h => h.key)).not.toContain(left[0]);
      waiter.child.stdin!.end();
      await waiter.exited;
      expect(await probe.getAll().prefix(prefix).keys()).toEqual([]);
    } finally {
      await waiter.kill();
      probe.close();
    }
  });
});
