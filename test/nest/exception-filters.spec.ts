import { jest } from '@jest/globals';
import { Catch, Controller, HttpException, Post, type ArgumentsHost, type ExceptionFilter, type INestApplication } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { EtcdLockModule, LockError, LockExceptionFilter, Locked, LockService, lockErrorToHttp } from '../../lib/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { uniquePrefix } from './fixtures/test-app.js';

jest.setTimeout(30_000);

@Controller('filtered')
class FilteredController {
  @Post('busy')
  @Locked('filtered', { tryOnly: true })
  busy() {
    return 'never while held';
  }

  @Post('teapot')
  teapot() {
    throw new HttpException('short and stout', 418);
  }
}

/** An application's catch-all filter as it is usually written: it knows nothing of lock errors. */
@Catch()
class NaiveAllExceptionsFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}
  catch(exception: unknown, host: ArgumentsHost): void {
    const status = exception instanceof HttpException ? exception.getStatus() : 500;
    this.adapterHost.httpAdapter.reply(host.switchToHttp().getResponse(), { statusCode: status, app: true }, status);
  }
}

/** The README's recipe: the catch-all extends LockExceptionFilter and hands it lock errors. */
@Catch()
class AllExceptionsFilter extends LockExceptionFilter {
  constructor(private readonly host: HttpAdapterHost) {
    super(host);
  }
  override catch(exception: unknown, host: ArgumentsHost) {
    if (exception instanceof LockError) return super.catch(exception, host);
    const status = exception instanceof HttpException ? exception.getStatus() : 500;
    this.host.httpAdapter.reply(host.switchToHttp().getResponse(), { statusCode: status, app: true }, status);
  }
}

/** The other recipe: a filter of its own that asks lockErrorToHttp for the status. */
@Catch()
class DelegatingFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}
  catch(exception: unknown, host: ArgumentsHost): void {
    const { httpAdapter } = this.adapterHost;
    const response = host.switchToHttp().getResponse();
    if (exception instanceof LockError) {
      const { status, retryAfter } = lockErrorToHttp(exception);
      if (retryAfter !== undefined) httpAdapter.setHeader(response, 'Retry-After', String(retryAfter));
      return httpAdapter.reply(response, { statusCode: status, error: exception.name, app: true }, status);
    }
    const status = exception instanceof HttpException ? exception.getStatus() : 500;
    httpAdapter.reply(response, { statusCode: status, app: true }, status);
  }
}

type FilterClass = new (host: HttpAdapterHost) => ExceptionFilter;

describe("an application's own catch-all exception filter beside the module's (real etcd)", () => {
  let etcd: EtcdCluster;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.close();
  });

  async function withApp(filter: FilterClass, run: (app: INestApplication) => Promise<void>): Promise<void> {
    const moduleRef = await Test.createTestingModule({
      imports: [EtcdLockModule.forRoot({ hosts: etcd.endpoints, prefix: uniquePrefix('filters'), logger: false })],
      controllers: [FilteredController],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    app.useGlobalFilters(new filter(app.get(HttpAdapterHost)));
    await app.init();
    const held = await app.get(LockService).acquire('filtered');
    try {
      await run(app);
    } finally {
      await held.release();
      await app.close();
    }
  }

  it('a naive catch-all wins over the module filter: a busy lock answers 500', async () => {
    await withApp(NaiveAllExceptionsFilter, async app => {
      const res = await request(app.getHttpServer()).post('/filtered/busy');
      expect(res.status).toBe(500);
    });
  });

  it.each([
    ['extending LockExceptionFilter', AllExceptionsFilter],
    ['delegating to lockErrorToHttp', DelegatingFilter],
  ])('composed by %s: 409 with Retry-After for the lock, the app’s answer for the rest', async (_name, filter) => {
    await withApp(filter as FilterClass, async app => {
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
