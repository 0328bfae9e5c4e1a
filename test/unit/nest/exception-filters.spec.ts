import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { EtcdLockTestingModule } from '../../../lib/testing/index.js';
import {
  AllExceptionsFilter,
  DelegatingFilter,
  NaiveAllExceptionsFilter,
  withFilteredApp,
  type FilterClass,
} from '../../nest/fixtures/exception-filters.js';

/** An application's own catch-all exception filter beside the module's, with the "filtered" lock held meanwhile. */
describe("an application's own catch-all exception filter beside the module's", () => {
  const withApp = <T>(filter: FilterClass, run: (app: INestApplication) => Promise<T>) =>
    withFilteredApp(EtcdLockTestingModule.forRoot(), filter, run);
  const post = (path: string) => (app: INestApplication) =>
    request(app.getHttpServer())
      .post(path)
      .then(r => r);

  it('a naive catch-all wins over the module filter: a busy lock answers 500', async () => {
    expect((await withApp(NaiveAllExceptionsFilter, post('/filtered/busy'))).status).toBe(500);
  });

  describe.each([
    ['extending LockExceptionFilter', AllExceptionsFilter],
    ['delegating to lockErrorToHttp', DelegatingFilter],
  ])('a catch-all composed by %s', (_name, filter) => {
    it('answers a busy lock with 409 LockBusyError', async () => {
      const busy = await withApp(filter as FilterClass, post('/filtered/busy'));
      expect(busy.status).toBe(409);
      expect(busy.body.error).toBe('LockBusyError');
    });

    it('sends Retry-After: 1 with the 409', async () => {
      expect((await withApp(filter as FilterClass, post('/filtered/busy'))).headers['retry-after']).toBe('1');
    });

    it("gives the application's own answer for other errors", async () => {
      const teapot = await withApp(filter as FilterClass, post('/filtered/teapot'));
      expect(teapot.status).toBe(418);
      expect(teapot.body.app).toBe(true);
    });
  });
});
