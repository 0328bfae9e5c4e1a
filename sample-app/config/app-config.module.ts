import { Module } from '@nestjs/common';
import { AppConfig } from './app-config.js';

/** Provides {@link AppConfig}, read from `process.env` at startup. */
@Module({
  providers: [{ provide: AppConfig, useFactory: () => new AppConfig(process.env) }],
  exports: [AppConfig],
})
export class AppConfigModule {}
