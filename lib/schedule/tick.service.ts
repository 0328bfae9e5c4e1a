import { Injectable } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';
import type { TickEvent } from '../core/index.js';
import type { TickJobStatus } from './tick-job-status.js';

/**
 * The ticks of this application's `@OncePerTick` jobs: every claim won, run ended and tick
 * skipped (`events$`), and each job's last run and skip (`jobs()`, for health checks).
 */
@Injectable()
export class TickService {
  private readonly subject = new Subject<TickEvent>();
  private readonly statuses = new Map<string, TickJobStatus>();
  /** Hot: subscribers see events from then on. */
  readonly events$: Observable<TickEvent> = this.subject.asObservable();

  /** Each job's last run and last skip on this instance. */
  jobs(): TickJobStatus[] {
    return [...this.statuses.values()].map(status => ({ ...status, skipped: { ...status.skipped } }));
  }

  /** @internal */
  track(status: TickJobStatus): void {
    this.statuses.set(status.job, status);
  }

  /** @internal */
  emit(event: TickEvent): void {
    this.subject.next(event);
  }
}
