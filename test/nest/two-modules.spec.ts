import { jest } from '@jest/globals';
import { Injectable, Module, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Etcd3 } from 'etcd3';
import { EtcdLockModule, Locked } from '../../lib/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { uniquePrefix } from './fixtures/test-app.js';

jest.setTimeout(30_000);

const prefixA = uniquePrefix('module-a');
const prefixB = uniquePrefix('module-b');
let hosts: string[] = [];
let probe: Etcd3;

/** Which of the two namespaces holds a key while the method runs. */
async function namespaces(): Promise<{ a: number; b: number }> {
  const [a, b] = await Promise.all([probe.getAll().prefix(prefixA).keys(), probe.getAll().prefix(prefixB).keys()]);
  return { a: a.length, b: b.length };
}

@Injectable()
class ReportsA {
  @Locked('report:{0}')
  async run(_id: string) {
    return namespaces();
  }
}
@Injectable()
class ReportsB {
  @Locked('report:{0}')
  async run(_id: string) {
    return namespaces();
  }
}

/** Two features of one application, each locking on its own EtcdLockModule (another prefix, or another cluster). */
@Module({
  imports: [EtcdLockModule.forRootAsync({ useFactory: () => ({ hosts, prefix: prefixA, logger: false }) })],
  providers: [ReportsA],
})
class FeatureA {}
@Module({
  imports: [EtcdLockModule.forRootAsync({ useFactory: () => ({ hosts, prefix: prefixB, logger: false }) })],
  providers: [ReportsB],
})
class FeatureB {}

async function boot(imports: any[]): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ imports }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

describe('@Locked provider methods get the LockService of the module they import (real etcd)', () => {
  let etcd: EtcdCluster;

  beforeAll(async () => {
    etcd = await startEtcd();
    hosts = etcd.endpoints;
    probe = new Etcd3({ hosts });
  });
  afterAll(async () => {
    probe?.close();
    await etcd?.close();
  });

  // Bootstrap without a LockService, and instances Nest did not create: test/unit/nest/two-modules.spec.ts.
  it('locks each provider in its own module’s namespace', async () => {
    const app = await boot([FeatureA, FeatureB]);
    try {
      expect(await app.get(ReportsA).run('1')).toEqual({ a: 1, b: 0 });
      expect(await app.get(ReportsB).run('1')).toEqual({ a: 0, b: 1 });
    } finally {
      await app.close();
    }
  });
});
