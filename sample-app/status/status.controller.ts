import { Controller, Get } from '@nestjs/common';
import { LockService } from '../../lib/index.js';
import { AppConfig } from '../config/app-config.js';
import { FencedStore } from '../state/fenced-store.js';

/** What this instance has seen: its lease, and the writes its fenced store refused or retried. */
@Controller('status')
export class StatusController {
  constructor(
    private readonly locks: LockService,
    private readonly store: FencedStore,
    private readonly config: AppConfig,
  ) {}

  @Get()
  status() {
    return { instance: this.config.instance, lease: this.locks.status(), fencing: this.store.report };
  }
}
