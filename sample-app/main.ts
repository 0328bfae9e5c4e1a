/**
 * Boots the sample app. Configuration comes from the environment (see AppConfig):
 *
 *   ETCD_HOSTS=http://127.0.0.1:2379 LOCK_PREFIX=locks/ LOCK_TTL=10 PORT=3000 node dist/sample-app/main.js
 */
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';
import { AppConfig } from './config/app-config.js';

async function bootstrap(): Promise<void> {
  // abortOnError: false, so that a bad configuration exits with a message instead of a core dump.
  const app = await NestFactory.create(AppModule, { abortOnError: false, logger: ['log', 'warn', 'error'] });
  // SIGTERM / SIGINT close the app: the lock module revokes its lease, freeing our locks at once.
  app.enableShutdownHooks();
  const config = app.get(AppConfig);
  await app.listen(config.port, config.host);
  new Logger('SampleApp').log(`${config.instance} listening on ${await app.getUrl()}`);
}

bootstrap().catch(err => {
  new Logger('SampleApp').error(`could not start: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
