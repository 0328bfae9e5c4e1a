import { jest } from '@jest/globals';
import { Controller, Param, Post, type INestApplication } from '@nestjs/common';
import request from 'supertest';
import { CurrentLock, Locked, LockService, type LockHandle } from '../../lib/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { createOrdersApp, uniquePrefix } from './fixtures/test-app.js';

jest.setTimeout(30_000);

/** A well-behaved method-wrapping decorator (a tracing or caching one): it carries the metadata over. */
function Traced(): MethodDecorator {
  return (_target, _key, descriptor: PropertyDescriptor) => {
    const original = descriptor.value as (...args: unknown[]) => unknown;
    const traced = function (this: unknown, ...args: unknown[]) {
      return original.apply(this, args);
    };
    for (const key of Reflect.getOwnMetadataKeys(original)) Reflect.defineMetadata(key, Reflect.getOwnMetadata(key, original), traced);
    descriptor.value = traced;
    return descriptor;
  };
}

@Controller('wrapped')
class WrappedController {
  constructor(private readonly locks: LockService) {}

  @Post(':id/above')
  @Traced()
  @Locked('wrapped:{params.id}')
  async above(@Param('id') id: string, @CurrentLock() lock: LockHandle) {
    return { id, held: (await this.locks.inspect(`wrapped:${id}`)).holder?.key === lock.key };
  }

  @Post(':id/below')
  @Locked('wrapped:{params.id}')
  @Traced()
  async below(@Param('id') id: string, @CurrentLock() lock: LockHandle) {
    return { id, held: (await this.locks.inspect(`wrapped:${id}`)).holder?.key === lock.key };
  }
}

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

  it.each(['above', 'below'])('locks the request once, keyed from the request, with the wrapper %s @Locked', async where => {
    const res = await request(app.getHttpServer()).post(`/wrapped/W1/${where}`);
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ id: 'W1', held: true });
  });
});
