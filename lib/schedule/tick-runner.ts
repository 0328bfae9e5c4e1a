import {
  type LockClient,
  type LockLogger,
  runWhileHeld,
  type TickClaims,
  type TickEvent,
  type TickOverlap,
  type TickSkip,
} from '../core/index.js';
import { lockScope, scopeWithCurrent } from '../nest/held-locks.js';
import type { TickJobStatus } from './tick-job-status.js';
import type { TickSchedule } from './tick-schedule.js';

/** Everything one `@OncePerTick` method needs at call time. */
export interface TickJob {
  name: string;
  schedule: TickSchedule;
  overlap: TickOverlap;
}

/**
 * Runs one job's ticks: maps the call to its scheduled time, claims the tick, and runs the
 * method under the claim's lock, or skips quietly.
 */
export class TickRunner {
  readonly status: TickJobStatus;

  constructor(
    readonly job: TickJob,
    private readonly claims: TickClaims,
    private readonly emit: (event: TickEvent) => void,
    private readonly logger: LockLogger,
    /** The application's lock client, so that `lockService.current()` sees the tick's lock. */
    private readonly lockClient?: LockClient,
  ) {
    this.status = { job: job.name, windowMs: job.schedule.windowMs, running: 0, ran: 0, skipped: {} };
  }

  async run(fn: () => unknown): Promise<unknown> {
    const started = performance.now();
    const scheduledAt = this.job.schedule.tickAt(Date.now());
    if (!scheduledAt) return this.skip(undefined, 'off-schedule');
    const claim = await this.claims.claim({
      job: this.job.name,
      scheduledAt,
      windowMs: this.job.schedule.windowMs,
      overlap: this.job.overlap,
    });
    if (!claim.won) return this.skip(scheduledAt, claim.reason, claim.error);
    const { lock } = claim;
    const fencingToken = lock.fencingToken;
    this.emit({ type: 'tick', job: this.job.name, scheduledAt, fencingToken, claimMs: performance.now() - started });
    this.status.running++;
    this.status.ran++;
    this.status.lastRun = { scheduledAt, fencingToken };
    const runStarted = performance.now();
    let error: unknown;
    try {
      const scope = scopeWithCurrent(this.lockClient, lock);
      return await runWhileHeld(
        lock,
        () => lockScope.run(scope, fn),
        () => lock.release(),
      );
    } catch (err) {
      error = err;
      throw err;
    } finally {
      const durationMs = performance.now() - runStarted;
      this.status.running--;
      if (this.status.lastRun.fencingToken === fencingToken)
        Object.assign(this.status.lastRun, { durationMs, failed: error !== undefined });
      this.emit({
        type: 'tick-ended',
        job: this.job.name,
        scheduledAt,
        fencingToken,
        durationMs,
        ...(error === undefined ? {} : { error }),
      });
    }
  }

  private skip(scheduledAt: Date | undefined, reason: TickSkip, error?: unknown): undefined {
    this.status.lastSkip = { scheduledAt, reason };
    this.status.skipped[reason] = (this.status.skipped[reason] ?? 0) + 1;
    this.emit({ type: 'skipped', job: this.job.name, scheduledAt, reason, ...(error === undefined ? {} : { error }) });
    // Others running the tick is the normal outcome (the event's debug line says so); a tick that
    // may have run nowhere is worth a warning.
    if (reason === 'unavailable' || reason === 'late') {
      const cause = error ? ` (${(error as Error).message ?? String(error)})` : '';
      this.logger.warn(`tick ${scheduledAt?.toISOString() ?? '(none)'} of "${this.job.name}" skipped: ${reason}${cause}`);
    }
    return undefined;
  }
}
