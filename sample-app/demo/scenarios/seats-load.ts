import { getJson, requestJson, type JsonReply } from '../http-json.js';
import { runWithConcurrency } from '../load.js';
import { lockWaitOf, range, succeeded } from './replies.js';

export interface SeatsLoad {
  seats: readonly string[];
  /** How many customers race for each seat. */
  customersPerSeat: number;
  concurrency: number;
}

export interface SeatBooking {
  seat: string;
  customer: string;
  reply: JsonReply;
  lockWaitMs?: number;
}

export interface SeatsRun {
  load: SeatsLoad;
  bookings: SeatBooking[];
  /** Per seat, the customers told "booked". More than one is a double booking. */
  winners: Map<string, string[]>;
  /** Per seat, who the stored state says booked it. */
  bookedBy: Map<string, string | undefined>;
  /** Refusals because the seat was taken (409 SeatTaken). */
  taken: number;
  doubleBookings: number;
  /** Seats with one winner whom the stored state does not name. */
  mismatches: number;
}

/** Lets `customersPerSeat` customers race for each seat, interleaved over the seats and `urls`. */
export async function runSeatsLoad(urls: readonly string[], load: SeatsLoad): Promise<SeatsRun> {
  const attempts = range(load.customersPerSeat).flatMap(k => load.seats.map(seat => ({ seat, customer: `${seat}-customer-${k}` })));
  const bookings = await runWithConcurrency(attempts, load.concurrency, async ({ seat, customer }, i) => {
    const reply = await requestJson('POST', `${urls[i % urls.length]}/seats/${encodeURIComponent(seat)}/book`, { customer });
    return { seat, customer, reply, lockWaitMs: lockWaitOf(reply) };
  });
  const winners = new Map(load.seats.map(seat => [seat, [] as string[]]));
  for (const booking of bookings) if (succeeded(booking.reply)) winners.get(booking.seat)!.push(booking.customer);
  const bookedBy = new Map<string, string | undefined>();
  for (const seat of load.seats) {
    const state = await getJson(`${urls[0]}/seats/${encodeURIComponent(seat)}`);
    bookedBy.set(seat, typeof state.bookedBy === 'string' ? state.bookedBy : undefined);
  }
  const taken = bookings.filter(booking => booking.reply.status === 409 && booking.reply.body.error === 'SeatTaken').length;
  let doubleBookings = 0;
  let mismatches = 0;
  for (const [seat, customers] of winners) {
    doubleBookings += Math.max(0, customers.length - 1);
    if (customers.length === 1 && bookedBy.get(seat) !== customers[0]) mismatches++;
  }
  return { load, bookings, winners, bookedBy, taken, doubleBookings, mismatches };
}
