import type { TickSkip } from '../core/index.js';

/** The last run and skip of one job on this instance, for health checks. */
export interface TickJobStatus {
  job: string;
  /** The skew window S of its schedule, in ms. */
  windowMs: number;
  /** Runs of it in progress here now (more than 1 only with `overlap: 'allow'`). */
  running: number;
  /** Ticks run here, and ticks skipped here by reason, since bootstrap. */
  ran: number;
  skipped: Partial<Record<TickSkip, number>>;
  lastRun?: { scheduledAt: Date; fencingToken: bigint; durationMs?: number; failed?: boolean };
  lastSkip?: { scheduledAt: Date | undefined; reason: TickSkip };
}
