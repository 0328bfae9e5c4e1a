import type { TickSkipReason } from './tick-claims.js';

/** Why an instance did not run a call of a `@OncePerTick` method. */
export type TickSkip =
  | TickSkipReason
  /** Called when no scheduled tick is within the skew window of this instance's clock (e.g. by hand). */
  | 'off-schedule';

/**
 * What happens to the ticks of `@OncePerTick` jobs on this instance (on `TickService.events$`,
 * and among the lock events of `LockService.events$`). Times are in ms.
 */
export type TickEvent =
  /** This instance claimed the tick and runs it now. `claimMs`: from the call to the claim's answer. */
  | { type: 'tick'; job: string; scheduledAt: Date; fencingToken: bigint; claimMs: number }
  /** The tick's run ended here (`error` when the method threw or its claim was lost). */
  | { type: 'tick-ended'; job: string; scheduledAt: Date; fencingToken: bigint; durationMs: number; error?: unknown }
  /** This instance did not run the tick (normally: another one did). */
  | { type: 'skipped'; job: string; scheduledAt: Date | undefined; reason: TickSkip; error?: unknown };
