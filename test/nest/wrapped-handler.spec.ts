import { jest } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { createOrdersApp, uniquePrefix } from './fixtures/test-app.js';
import { WrappedController } from './fixtures/wrapped.controller.js';

jest.setTimeout(30_000);

describe('@Locked on a controller handler under another wrapping decorator (real etcd)', () => {
  let etcd: EtcdCluster;
  let app: INestApplication;

  beforeAll(async () => {
    etcd = await startEtcd();
    app = await createOrdersApp({ hosts: etcd.endpoints, prefix: uniquePrefix('wrapped'), ttl: 5 }, { controllers: [WrappedController] });
  });
  afterAll(async () => {
    await app?.close();
    await etcd?.close();
  });

  // Below @Locked too, in memory: test/unit/nest/controller.spec.ts.
  it('locks the request once, keyed from the request, with the wrapper above @Locked', async () => {
    const res = await request(app.getHttpServer()).post('/wrapped/W1/above');
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ id: 'W1', held: true });
  });
});
