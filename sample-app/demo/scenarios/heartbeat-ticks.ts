import { getJson } from '../http-json.js';
import type { TickJobStatus } from '../../../lib/schedule/index.js';
import type { HeartbeatRun } from '../../ticks/heartbeat.job.js';
import type { OccupancyReport } from '../../ticks/occupancy-report.job.js';

/** What the instances' heartbeat runs say about the once-per-tick guarantee. */
export interface HeartbeatTicks {
  /** Distinct ticks run, over all instances. */
  ticks: number;
  /** Ticks run on more than one instance (must be 0). */
  ranTwice: string[];
  /** Whole seconds between the first and the last tick run that ran nowhere (must be 0 while all are up). */
  missed: string[];
  /** Runs per instance. */
  perInstance: Record<string, number>;
  /** Why instances skipped heartbeat ticks, summed over instances. */
  skipped: Record<string, number>;
  /** The @LeaderOnly occupancy report: runs per instance, who leads now, and the last report. */
  leader: { runsPerInstance: Record<string, number>; leading: string[]; lastReport: OccupancyReport | undefined };
}

/**
 * Collects every instance's heartbeat runs and leader-only report runs (`GET /ticks`) and checks
 * that each tick ran exactly once.
 */
export async function collectHeartbeatTicks(urls: readonly string[]): Promise<HeartbeatTicks> {
  const replies = (await Promise.all(urls.map(url => getJson(`${url}/ticks`)))) as Array<{
    instance: string;
    runs: HeartbeatRun[];
    jobs: TickJobStatus[];
    leader: { isLeader: boolean; reportRuns: number; lastReport?: OccupancyReport };
  }>;
  const byTick = new Map<number, string[]>();
  const perInstance: Record<string, number> = {};
  const skipped: Record<string, number> = {};
  for (const { instance, runs, jobs } of replies) {
    perInstance[instance] = runs.length;
    for (const [reason, count] of Object.entries(jobs.find(job => job.job === 'heartbeat')?.skipped ?? {}))
      skipped[reason] = (skipped[reason] ?? 0) + count;
    for (const run of runs) byTick.set(Date.parse(run.tick), [...(byTick.get(Date.parse(run.tick)) ?? []), instance]);
  }
  const ranTwice = [...byTick]
    .filter(([, who]) => who.length > 1)
    .map(([tick, who]) => `${new Date(tick).toISOString()} (${who.join(', ')})`);
  const times = [...byTick.keys()].sort((a, b) => a - b);
  const missed: string[] = [];
  for (let tick = times[0]; times.length > 0 && tick <= times[times.length - 1]; tick += 1000) {
    if (!byTick.has(tick)) missed.push(new Date(tick).toISOString());
  }
  const leader = {
    runsPerInstance: Object.fromEntries(replies.map(({ instance, leader }) => [instance, leader.reportRuns])),
    leading: replies.filter(reply => reply.leader.isLeader).map(reply => reply.instance),
    lastReport: replies.find(reply => reply.leader.lastReport)?.leader.lastReport,
  };
  return { ticks: byTick.size, ranTwice, missed, perInstance, skipped, leader };
}
