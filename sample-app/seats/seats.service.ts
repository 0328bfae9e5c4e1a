import { ConflictException, Injectable, Logger } from '@nestjs/common';
import { setTimeout as delay } from 'node:timers/promises';
import { FencedStore } from '../state/fenced-store.js';

/** A booked seat. A seat nobody booked has no record. */
export interface Seat {
  bookedBy: string;
  bookedAt: string;
}

/** The seat is booked already: the loser of a race is told who won. */
export class SeatTakenException extends ConflictException {
  constructor(seatId: string, bookedBy: string) {
    super({ statusCode: 409, error: 'SeatTaken', message: `seat ${seatId} is already booked`, bookedBy });
  }
}

/** Seat bookings, kept in etcd. Callers hold the seat's lock and pass its fencing token. */
@Injectable()
export class SeatsService {
  private readonly logger = new Logger(SeatsService.name);

  constructor(private readonly store: FencedStore) {}

  read(seatId: string): Promise<Seat | undefined> {
    return this.store.read<Seat>(record(seatId));
  }

  /**
   * Books the seat for `customer` unless someone has it. `holdMs` stretches the time between
   * reading the seat and writing it, as slow work would.
   */
  book(seatId: string, customer: string, fencingToken: bigint, holdMs = 0): Promise<Seat> {
    return this.store.updateOne<Seat>(record(seatId), fencingToken, async seat => {
      if (seat) throw new SeatTakenException(seatId, seat.bookedBy);
      if (holdMs > 0) {
        this.logger.log(`seat ${seatId} is free; working ${holdMs} ms before booking it for ${customer}`);
        await delay(holdMs);
      }
      return { bookedBy: customer, bookedAt: new Date().toISOString() };
    });
  }
}

function record(seatId: string): string {
  return `seats/${seatId}`;
}
