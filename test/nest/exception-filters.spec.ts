import { jest } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { EtcdLockModule } from '../../lib/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { AllExceptionsFilter, withFilteredApp, type FilterClass } from './fixtures/exception-filters.js';
import { uniquePrefix } from './fixtures/test-app.js';

jest.setTimeout(30_000);

describe("an application's own catch-all exception filter beside the module's (real etcd)", () => {
  let etcd: EtcdCluster;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.close();
  });

  const withApp = <T>(filter: FilterClass, run: (app: INestApplication) => Promise<T>) =>
    withFilteredApp(EtcdLockModule.forRoot({ hosts: etcd.endpoints, prefix: uniquePrefix('filters'), logger: false }), filter, run);

  // The naive filter and the delegating recipe, in memory: test/unit/nest/exception-filters.spec.ts.
  it('composed by extending LockExceptionFilter: 409 with Retry-After for the lock, the app’s answer for the rest', async () => {
    await withApp(AllExceptionsFilter, async app => {
      const busy = await request(app.getHttpServer()).post('/filtered/busy');
      expect(busy.status).toBe(409);
      expect(busy.headers['retry-after']).toBe('1');
      expect(busy.body.error).toBe('LockBusyError');
      const teapot = await request(app.getHttpServer()).post('/filtered/teapot');
      expect(teapot.status).toBe(418);
      expect(teapot.body.app).toBe(true);
    });
  });
});
