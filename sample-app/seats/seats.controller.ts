import { BadRequestException, Body, Controller, Get, Param, Post } from '@nestjs/common';
import { CurrentLock, Locked, type LockHandle } from '../../lib/index.js';
import { AppConfig } from '../config/app-config.js';
import { LockWaitMs } from '../lock-wait/lock-wait.js';
import { SeatsService } from './seats.service.js';

interface BookSeatBody {
  customer?: unknown;
  /** Only for `book-slowly`: how long to work between reading and writing the seat. */
  holdMs?: unknown;
}

/** Seat booking: every instance may take a booking, the seat's lock makes sure it is taken once. */
@Controller('seats')
export class SeatsController {
  constructor(
    private readonly seats: SeatsService,
    private readonly config: AppConfig,
  ) {}

  @Get(':id')
  async seat(@Param('id') id: string) {
    return { seat: id, ...(await this.seats.read(id)) };
  }

  /** Books the seat; 409 `SeatTaken` if someone was first. */
  @Post(':id/book')
  @Locked('seat:{params.id}')
  async book(@Param('id') id: string, @Body() body: BookSeatBody, @CurrentLock() lock: LockHandle, @LockWaitMs() lockWaitMs: number) {
    const seat = await this.seats.book(id, customerOf(body), lock.fencingToken);
    return { seat: id, ...seat, fencingToken: lock.fencingToken.toString(), lockWaitMs, instance: this.config.instance };
  }

  /**
   * Books the seat after working for `holdMs` with the lock held. It deliberately ignores the
   * lock's signal: it stands for work that cannot be interrupted (a GC pause, a stalled disk),
   * the case where only the fencing token stops a holder whose lock has expired meanwhile.
   */
  @Post(':id/book-slowly')
  @Locked('seat:{params.id}')
  async bookSlowly(@Param('id') id: string, @Body() body: BookSeatBody, @CurrentLock() lock: LockHandle, @LockWaitMs() lockWaitMs: number) {
    const holdMs = body.holdMs;
    if (typeof holdMs !== 'number' || !Number.isInteger(holdMs) || holdMs < 0 || holdMs > 60_000) {
      throw new BadRequestException('holdMs must be an integer between 0 and 60000');
    }
    const seat = await this.seats.book(id, customerOf(body), lock.fencingToken, holdMs);
    return { seat: id, ...seat, fencingToken: lock.fencingToken.toString(), lockWaitMs, instance: this.config.instance };
  }
}

function customerOf(body: BookSeatBody): string {
  if (typeof body.customer !== 'string' || body.customer === '') throw new BadRequestException('customer must be a non-empty string');
  return body.customer;
}
