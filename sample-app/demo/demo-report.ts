import { countConflicting, percentile } from './load.js';
import type { CounterRun } from './scenarios/counter-load.js';
import type { SeatsRun } from './scenarios/seats-load.js';
import type { TransfersRun } from './scenarios/transfers-load.js';
import { succeeded } from './scenarios/replies.js';

/** Everything the demo measured, and the verdicts drawn from it. */
export interface DemoReport {
  instances: Array<{ name: string; pid: number; url: string }>;
  etcdEndpoint: string;
  counter: CounterRun;
  seats: SeatsRun;
  transfers: TransfersRun;
  unlocked: CounterRun;
  audit: Record<string, unknown>;
  /** Summed over the instances' /status. */
  fencing: { staleWritesRefused: number; casConflicts: number };
  /** Locked requests that overlapped another on the same key. */
  conflicting: number;
  lockedRequests: number;
  /** Locked requests answered neither as success nor as a business refusal. */
  failures: number;
  lockWait: { p50: number; p99: number; max: number; samples: number };
  consistent: boolean;
}

type Measured = Omit<DemoReport, 'conflicting' | 'lockedRequests' | 'failures' | 'lockWait' | 'consistent'>;

/** Derives the summary figures and the overall verdict from the raw runs. */
export function buildReport(measured: Measured): DemoReport {
  const { counter, seats, transfers } = measured;
  const timed = [
    ...counter.increments.map(({ reply }) => ({ keys: [`counter:${counter.load.counter}`], ...reply })),
    ...seats.bookings.map(({ seat, reply }) => ({ keys: [`seat:${seat}`], ...reply })),
    ...transfers.transfers.map(({ from, to, reply }) => ({ keys: [`account:${from}`, `account:${to}`], ...reply })),
  ];
  const waits = [...counter.increments, ...seats.bookings, ...transfers.transfers].flatMap(r =>
    r.lockWaitMs === undefined ? [] : [r.lockWaitMs],
  );
  const failures =
    counter.increments.filter(i => !succeeded(i.reply)).length +
    seats.bookings.filter(b => !succeeded(b.reply) && b.reply.body.error !== 'SeatTaken').length +
    transfers.transfers.filter(t => !succeeded(t.reply) && t.reply.status !== 422).length;
  const everySeatBooked = [...seats.winners.values()].every(customers => customers.length === 1);
  const consistent =
    failures === 0 &&
    counter.lostUpdates === 0 &&
    counter.finalValue === counter.succeeded.length &&
    seats.doubleBookings === 0 &&
    seats.mismatches === 0 &&
    everySeatBooked &&
    transfers.conserved &&
    transfers.balancesMatch &&
    measured.audit.consistent !== false;
  return {
    ...measured,
    conflicting: countConflicting(timed),
    lockedRequests: timed.length,
    failures,
    lockWait: { p50: percentile(waits, 50), p99: percentile(waits, 99), max: Math.max(...waits), samples: waits.length },
    consistent,
  };
}
