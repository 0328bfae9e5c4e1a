import type { TickSkipReason } from '../core/index.js';

/** Why an instance did not run a call of a `@OncePerTick` method. */
export type TickSkip =
  | TickSkipReason
  /** Called when no scheduled tick is within the skew window of this instance's clock (e.g. by hand). */
  | 'off-schedule';

/** What happens to the ticks of `@OncePerTick` jobs on this instance. Times are in ms. */
export type TickEvent =
  /** This instance claimed the tick and runs it now. `claimMs`: from the call to the claim's answer. */
  | { type: 'tick'; job: string; scheduledAt: Date; fencingToken: bigint; claimMs: number }
  /** The tick's run ended here (`error` when the method threw or its claim was lost). */
  | { type: 'tick-ended'; job: string; scheduledAt: Date; fencingToken: bigint; durationMs: number; error?: unknown }
  /** This instance did not run the tick (normally: another one did). */
  | { type: 'skipped'; job: string; scheduledAt: Date | undefined; reason: TickSkip; error?: unknown };

/** The last run and skip of one job on this instance, for health checks. */
export interface TickJobStatus {
  job: string;
  /** The skew window S of its schedule, in ms. */
  windowMs: number;
  running: number;
  /** Ticks run here, and ticks skipped here by reason, since bootstrap. */
  ran: number;
  skipped: Partial<Record<TickSkip, number>>;
  lastRun?: { scheduledAt: Date; fencingToken: bigint; durationMs?: number; failed?: boolean };
  lastSkip?: { scheduledAt: Date | undefined; reason: TickSkip };
}
