/**
 * A minimal NestJS HTTP app for the decorator-overhead benchmark: the same trivial handler
 *   /plain/:id    as is,
 *   /intercepted/:id under a pass-through interceptor: what any interceptor costs in Nest,
 *   /locked/:id   under @Locked('bench:{params.id}') (a fresh key per request: nothing waits),
 *   /service/:id  under LockService.withLock (no interceptor),
 *   /intercepted-service/:id  the same under the pass-through interceptor: what an interceptor
 *                 costs around a handler that waits for etcd, and
 *   /raw/:id      making two etcd writes (put + delete) itself, through the module's own etcd3
 *                 client: the floor, measured in the same process;
 *   /guarded/:id  sending the lock's own two transactions (put-if-absent + read of the queue,
 *                 delete-if-create-revision) itself, through the same client;
 *   /cpu          the process's CPU time so far.
 * With `inMemory`, the same app runs on the in-memory lock client (`nest-etcd-lock/testing`):
 * what the Nest layer costs without etcd (/raw and /guarded need etcd and are not served).
 * Prints "ready <port>" once listening; closes (revoking its lease) when stdin ends.
 */
import 'reflect-metadata';
import {
  Controller,
  Get,
  Inject,
  Injectable,
  Module,
  Param,
  UseInterceptors,
  type CallHandler,
  type NestInterceptor,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ETCD_LOCK_CLIENT, EtcdLockClient, EtcdLockModule, Locked, LockService } from '../../lib/index.js';
import { EtcdLockTestingModule } from '../../lib/testing/index.js';
import { guardedCycle } from '../lib/guarded-floor.js';

const config = JSON.parse(process.argv[2]) as { endpoint: string; inMemory?: boolean };

@Injectable()
class PassThroughInterceptor implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler) {
    return next.handle();
  }
}

@Controller()
class BenchController {
  constructor(
    private readonly locks: LockService,
    @Inject(ETCD_LOCK_CLIENT) private readonly client: EtcdLockClient,
  ) {}

  @Get('plain/:id')
  plain(@Param('id') id: string) {
    return { id };
  }

  @Get('intercepted/:id')
  @UseInterceptors(PassThroughInterceptor)
  intercepted(@Param('id') id: string) {
    return { id };
  }

  @Get('locked/:id')
  @Locked('bench:{params.id}')
  locked(@Param('id') id: string) {
    return { id };
  }

  @Get('service/:id')
  service(@Param('id') id: string) {
    return this.locks.withLock(`bench:${id}`, () => ({ id }));
  }

  @Get('intercepted-service/:id')
  @UseInterceptors(PassThroughInterceptor)
  interceptedService(@Param('id') id: string) {
    return this.locks.withLock(`bench:${id}`, () => ({ id }));
  }

  /** This process's CPU time so far (µs), to work out the CPU cost of each route. */
  @Get('cpu')
  cpu() {
    return process.cpuUsage();
  }

  @Get('raw/:id')
  async raw(@Param('id') id: string) {
    const key = Buffer.from(`bench/http-raw/${id}`);
    await this.client.etcd.kv.put({ key, value: Buffer.from('x') });
    await this.client.etcd.kv.deleteRange({ key });
    return { id };
  }

  @Get('guarded/:id')
  async guarded(@Param('id') id: string) {
    const lease = BigInt(`0x${this.client.status().leaseId!}`).toString();
    await guardedCycle(this.client.etcd, `bench/http-guarded/${id}/`, lease);
    return { id };
  }
}

@Module({
  imports: [
    config.inMemory
      ? EtcdLockTestingModule.forRoot()
      : EtcdLockModule.forRoot({ hosts: config.endpoint, ttl: 10, prefix: 'bench/http/', logger: false }),
  ],
  controllers: [BenchController],
})
class BenchAppModule {}

const app = await NestFactory.create(BenchAppModule, { logger: false });
await app.listen(0, '127.0.0.1');
const address = app.getHttpServer().address() as { port: number };
console.log(`ready ${address.port}`);
process.stdin.resume();
process.stdin.on('end', () => {
  void app.close().then(() => process.exit(0));
});
