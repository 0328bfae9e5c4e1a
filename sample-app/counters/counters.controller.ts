import { Controller, Get, Param, Post } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { CountersService } from './counters.service.js';

/** Counters: `/counters/:id` is locked, `/unlocked-counters/:id` is the control without a lock. */
@Controller()
export class CountersController {
  constructor(
    private readonly counters: CountersService,
    private readonly config: AppConfig,
  ) {}

  @Get('counters/:id')
  async counter(@Param('id') id: string) {
    return { counter: id, value: (await this.counters.read(id)) ?? 0 };
  }

  @Post('counters/:id/increment')
  async increment(@Param('id') id: string) {
    return { ...(await this.counters.increment(id)), instance: this.config.instance };
  }

  @Get('unlocked-counters/:id')
  async unlockedCounter(@Param('id') id: string) {
    return { counter: id, value: (await this.counters.readUnlocked(id)) ?? 0 };
  }

  /** UNLOCKED control: the same read-modify-write as `counters/:id/increment`, without the lock. */
  @Post('unlocked-counters/:id/increment')
  async incrementWithoutLock(@Param('id') id: string) {
    return { ...(await this.counters.incrementWithoutLock(id)), instance: this.config.instance };
  }
}
