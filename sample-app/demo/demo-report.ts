import { countConflicting, percentile } from './load.js';
import type { CounterRun } from './scenarios/counter-load.js';
import type { ExportsRun } from './scenarios/exports-load.js';
import type { SeatsRun } from './scenarios/seats-load.js';
import type { StatementsRun } from './scenarios/statements-load.js';
import type { TransfersRun } from './scenarios/transfers-load.js';
import { succeeded } from './scenarios/replies.js';

/** Everything the demo measured, and the verdicts drawn from it. */
export interface DemoReport {
  instances: Array<{ name: string; pid: number; url: string }>;
  etcdEndpoint: string;
  counter: CounterRun;
  seats: SeatsRun;
  transfers: TransfersRun;
  /** Read under shared locks while the transfers ran. */
  statements: StatementsRun;
  /** Limited by a semaphore across the instances. */
  exports: ExportsRun;
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
  /** Every statement's total is the money in the system. */
  statementsConsistent: boolean;
  consistent: boolean;
}

type Measured = Omit<DemoReport, 'conflicting' | 'lockedRequests' | 'failures' | 'lockWait' | 'statementsConsistent' | 'consistent'>;

/** Derives the summary figures and the overall verdict from the raw runs. */
export function buildReport(measured: Measured): DemoReport {
  const { counter, seats, transfers, statements, exports } = measured;
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
    transfers.transfers.filter(t => !succeeded(t.reply) && t.reply.status !== 422).length +
    (statements.replies.length - statements.succeeded) +
    (exports.replies.length - exports.succeeded);
  // Transfers conserve money: a statement that saw another total read in the middle of one.
  const statementsConsistent = statements.totals.every(total => total === transfers.totalBefore);
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
    statementsConsistent &&
    exports.maxRunningAtOnce <= exports.slots &&
    measured.audit.consistent !== false;
  return {
    ...measured,
    conflicting: countConflicting(timed),
    lockedRequests: timed.length + measured.statements.replies.length + measured.exports.replies.length,
    failures,
    lockWait: { p50: percentile(waits, 50), p99: percentile(waits, 99), max: Math.max(...waits), samples: waits.length },
    statementsConsistent,
    consistent,
  };
}
