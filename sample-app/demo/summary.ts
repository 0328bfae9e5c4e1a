import type { DemoReport } from './demo-report.js';

const yesNo = (value: boolean | undefined) => (value ? 'yes' : 'no');
const ms = (value: number) => `${value.toFixed(1)} ms`;

/** The few lines `npm run demo` ends with. */
export function formatSummary(report: DemoReport, elapsedMs: number): string {
  const { counter, seats, transfers, statements, exports, unlocked, fencing, lockWait } = report;
  const bookedSeats = [...seats.winners.values()].filter(customers => customers.length > 0).length;
  const audit = report.audit;
  const auditLine =
    audit.consistent === undefined
      ? 'no audit ran yet'
      : `${audit.consistent ? 'consistent' : 'INCONSISTENT'}: ${audit.accounts} accounts hold ${audit.total} (expected ${audit.expectedTotal}), run by ${audit.auditedBy}`;
  const lines = [
    '',
    `nest-etcd-lock demo: ${report.instances.length} sample-app processes (${report.instances.map(i => `${i.name} pid ${i.pid}`).join(', ')}) sharing one etcd (${report.etcdEndpoint})`,
    '',
    'WITH the lock (@Locked on handlers, LockService.withLock, fenced writes)',
    `  counter                 ${counter.load.requests} increments, ${counter.succeeded.length} ok, final value ${counter.finalValue} (expected ${counter.succeeded.length}), lost updates ${counter.lostUpdates}`,
    `  seat bookings           ${seats.bookings.length} attempts on ${seats.load.seats.length} seats: ${bookedSeats} booked, ${seats.taken} told "taken", double bookings ${seats.doubleBookings}`,
    `  transfers               ${transfers.transfers.length} between ${transfers.load.accounts.length} accounts both ways: ${transfers.succeeded.length} ok, ${transfers.insufficientFunds} refused (funds); total ${transfers.totalAfter} (expected ${transfers.totalBefore}), balances match: ${yesNo(transfers.balancesMatch)}`,
    `  statements (shared)     ${statements.succeeded} of ${statements.replies.length} read beside the transfers, up to ${statements.maxReadersAtOnce} at once; every total ${transfers.totalBefore}: ${yesNo(report.statementsConsistent)}`,
    `  exports (semaphore)     ${exports.succeeded} of ${exports.replies.length} ran, ${exports.load.concurrency} asked at once: at most ${exports.maxRunningAtOnce} running at once across the instances (limit ${exports.slots}, counted in etcd)`,
    `  requests                ${report.lockedRequests} (failed: ${report.failures})`,
    `  conflicts serialized    ${report.conflicting} requests overlapped another one on the same key`,
    `  lock wait               p50 ${ms(lockWait.p50)}, p99 ${ms(lockWait.p99)} (max ${ms(lockWait.max)}; over the ${lockWait.samples} successful requests)`,
    `  fencing tokens rising   ${yesNo(counter.tokensRising)} (${counter.succeeded.length} counter writes, in value order)`,
    `  fenced store            ${fencing.staleWritesRefused} stale writes refused, ${fencing.casConflicts} CAS retries${fencing.casConflicts === 0 ? ' (the lock alone serialized every conflict)' : ''}`,
    `  audit job (@Locked)     ${auditLine}`,
    '',
    'WITHOUT the lock (control: the same read-modify-write on /unlocked-counters)',
    `  counter                 ${unlocked.load.requests} increments, ${unlocked.succeeded.length} ok, final value ${unlocked.finalValue} (expected ${unlocked.succeeded.length}), lost updates ${unlocked.lostUpdates}`,
    '',
    `Final state consistent: ${yesNo(report.consistent)} with the lock; without it ${unlocked.lostUpdates} of ${unlocked.succeeded.length} acknowledged increments were lost.`,
    `Done in ${(elapsedMs / 1000).toFixed(1)} s.`,
  ];
  return lines.join('\n');
}
