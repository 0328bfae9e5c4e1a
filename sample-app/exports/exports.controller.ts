import { BadRequestException, Body, Controller, Post } from '@nestjs/common';
import { CurrentLock, Locked, type LockHandle } from '../../lib/index.js';
import { AppConfig } from '../config/app-config.js';
import { LockWaitMs } from '../lock-wait/lock-wait.js';
import { ExportsService } from './exports.service.js';

/** How many exports may run at once, across every instance. */
export const EXPORT_SLOTS = 2;

interface ExportBody {
  /** How long the export works, in ms (default 100). */
  workMs?: unknown;
}

/** Exports: expensive, so a semaphore lets at most {@link EXPORT_SLOTS} run at once, whichever instance takes them. */
@Controller('exports')
export class ExportsController {
  constructor(
    private readonly exports: ExportsService,
    private readonly config: AppConfig,
  ) {}

  @Post()
  @Locked('exports', { permits: EXPORT_SLOTS })
  async export(@Body() body: ExportBody, @CurrentLock() lock: LockHandle, @LockWaitMs() lockWaitMs: number) {
    const workMs = body.workMs ?? 100;
    if (typeof workMs !== 'number' || !Number.isInteger(workMs) || workMs < 0 || workMs > 10_000) {
      throw new BadRequestException('workMs must be an integer between 0 and 10000');
    }
    const run = await this.exports.run(workMs, lock.leaseId);
    return { ...run, slots: EXPORT_SLOTS, fencingToken: lock.fencingToken.toString(), lockWaitMs, instance: this.config.instance };
  }
}
