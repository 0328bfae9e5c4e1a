import type { ElectionStanding } from '../nest/election.service.js';
import type { TickJobStatus } from '../schedule/tick-job-status.js';

/** Health details are JSON: fencing tokens as decimal strings, times as ISO strings. */

/** Each election by name: `{ leader, campaigning, fencingToken?, value? }`. */
export function describeElections(standings: ElectionStanding[]) {
  return Object.fromEntries(
    standings.map(({ name, fencingToken, ...rest }) => [
      name,
      { ...rest, ...(fencingToken === undefined ? {} : { fencingToken: String(fencingToken) }) },
    ]),
  );
}

/** Each `@OncePerTick` job by name: runs and skips here, the last of each, and runs going on. */
export function describeTicks(jobs: TickJobStatus[]) {
  return Object.fromEntries(
    jobs.map(({ job, windowMs, running, ran, skipped, lastRun, lastSkip }) => [
      job,
      {
        windowMs,
        running,
        ran,
        skipped,
        ...(lastRun
          ? { lastRun: { ...lastRun, scheduledAt: lastRun.scheduledAt.toISOString(), fencingToken: String(lastRun.fencingToken) } }
          : {}),
        ...(lastSkip ? { lastSkip: { ...lastSkip, scheduledAt: lastSkip.scheduledAt?.toISOString() ?? null } } : {}),
      },
    ]),
  );
}
