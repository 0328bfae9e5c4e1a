import { CronTime } from 'cron';

/** The longest skew window: the issue's bound of 1 s between any two instances' clocks. */
export const MAX_WINDOW_MS = 1000;
/** Consecutive ticks sampled to find a schedule's shortest gap, within a span of days. */
const SAMPLED_TICKS = 64;
const SAMPLED_SPAN_MS = 31 * 24 * 3600_000;

/**
 * A job's ticks, computed from its `@Cron` expression (and time zone) alone, so every instance
 * computes the same scheduled times whatever its clock says.
 *
 * The skew window S is min(1 s, half the shortest gap between two ticks). A call is mapped to
 * the scheduled time within S of this instance's clock; S ≤ half the gap, so there is at most one.
 */
export class TickSchedule {
  readonly windowMs: number;
  private readonly cron: CronTime;

  constructor(cronTime: string | Date | object, timeZone?: string, utcOffset?: number) {
    this.cron = new (CronTime as unknown as new (...args: unknown[]) => CronTime)(cronTime, timeZone, utcOffset);
    this.windowMs = Math.min(MAX_WINDOW_MS, Math.floor(this.shortestGapMs(Date.now()) / 2));
  }

  /** The scheduled tick within the skew window of `nowMs`, if any. */
  tickAt(nowMs: number): Date | undefined {
    const next = this.nextAfter(nowMs - this.windowMs - 1);
    return next !== undefined && next <= nowMs + this.windowMs ? new Date(next) : undefined;
  }

  /** The first scheduled time strictly after `ms`. */
  private nextAfter(ms: number): number | undefined {
    if (this.cron.realDate) {
      const at = this.cron.sendAt().toMillis();
      return at > ms ? at : undefined;
    }
    return this.cron.getNextDateFrom(new Date(ms)).toMillis();
  }

  /** Only gaps under 2·MAX_WINDOW_MS matter, and a schedule that has them shows them within days. */
  private shortestGapMs(fromMs: number): number {
    let shortest = Infinity;
    let previous = this.nextAfter(fromMs);
    for (let i = 0; previous !== undefined && previous - fromMs < SAMPLED_SPAN_MS && i < SAMPLED_TICKS; i++) {
      let next: number | undefined;
      try {
        next = this.nextAfter(previous);
      } catch {
        break; // cron searches 8 years ahead at most: a sparse schedule's later ticks are out of its sight
      }
      if (next === undefined) break;
      shortest = Math.min(shortest, next - previous);
      previous = next;
    }
    return shortest;
  }
}
