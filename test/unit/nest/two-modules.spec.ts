import { Injectable, Module, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { LockError, Locked, LockServiceMissingError } from '../../../lib/index.js';
import { EtcdLockTestingModule, InMemoryLockClient } from '../../../lib/testing/index.js';

/** Runs `probe` while holding `report:<id>`: the test looks at which client holds it then. */
@Injectable()
class ReportsA {
  /** Its module's client, for the test to look at (the lock itself goes through the injected LockService). */
  constructor(readonly client: InMemoryLockClient) {}

  @Locked('report:{0}')
  async run<T>(_id: string, probe: () => Promise<T>): Promise<T> {
    return probe();
  }
}
@Injectable()
class ReportsB {
  constructor(readonly client: InMemoryLockClient) {}

  @Locked('report:{0}')
  async run<T>(_id: string, probe: () => Promise<T>): Promise<T> {
    return probe();
  }
}

/** Two features of one application, each locking on its own lock module (its own client). */
@Module({ imports: [EtcdLockTestingModule.forRoot({ prefix: 'a/' })], providers: [ReportsA] })
class FeatureA {}
@Module({ imports: [EtcdLockTestingModule.forRoot({ prefix: 'b/' })], providers: [ReportsB] })
class FeatureB {}

/** A provider with a @Locked method in a module that reaches no LockService. */
@Injectable()
class Orphan {
  @Locked('orphan')
  async run() {}
}
@Module({ providers: [Orphan] })
class OrphanModule {}

async function boot(imports: any[]): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ imports }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

describe('@Locked provider methods get the LockService of the module they import', () => {
  describe('two features, each with its own lock module', () => {
    let app: INestApplication;
    let clientA: InMemoryLockClient;
    let clientB: InMemoryLockClient;
    beforeAll(async () => {
      app = await boot([FeatureA, FeatureB]);
      clientA = app.get(ReportsA).client;
      clientB = app.get(ReportsB).client;
    });
    afterAll(async () => {
      await app?.close();
    });

    const holders = async () => ({
      a: (await clientA.inspect('report:1')).holder !== undefined,
      b: (await clientB.inspect('report:1')).holder !== undefined,
    });

    it('gives each feature a client of its own', () => {
      expect(clientA).not.toBe(clientB);
    });

    it("locks the first feature's provider on its module's client only", async () => {
      expect(await app.get(ReportsA).run('1', holders)).toEqual({ a: true, b: false });
    });

    it("locks the second feature's provider on its module's client only", async () => {
      expect(await app.get(ReportsB).run('1', holders)).toEqual({ a: false, b: true });
    });
  });

  it('fails at bootstrap, naming the provider and LockService, when its module reaches no LockService', async () => {
    const error = await boot([FeatureA, OrphanModule]).catch(e => e);
    expect(error.message).toContain('dependencies of the Orphan');
    expect(error.message).toContain('LockService');
  });

  it('gives a LockServiceMissingError naming the method when called on an instance Nest did not create', async () => {
    const error = await new ReportsA(new InMemoryLockClient()).run('x', async () => 'ran').catch(e => e);
    expect(error).toBeInstanceOf(LockServiceMissingError);
    expect(error).toBeInstanceOf(LockError);
    expect(error.message).toContain('ReportsA.run');
  });
});
