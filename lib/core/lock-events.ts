import type { LockError } from './errors.js';
import type { LockLogger } from './logger.js';
import type { TickEvent } from './tick-events.js';

/** What happens to locks, and to the ticks of `@OncePerTick` jobs, for metrics and debugging. Times are in ms. */
export type LockEvent =
  /** Queued behind another holder. */
  | { type: 'waiting'; resource: string; key: string }
  | { type: 'acquired'; resource: string; key: string; fencingToken: bigint; waitedMs: number }
  | { type: 'released'; resource: string; key: string; heldMs: number }
  | { type: 'lost'; resource: string; key: string; heldMs: number; reason: string }
  /** An acquisition that did not succeed: timeout, busy, aborted, etcd unavailable, ... */
  | { type: 'failed'; resource: string; waitedMs: number; error: unknown }
  /** A tick this instance runs (`tick`), whose run ended (`tick-ended`), or that it did not run (`skipped`). */
  | TickEvent;

export type LockEventListener = (event: LockEvent) => void;

/** A tiny synchronous event hub: listeners cannot break the lock code that emits. */
export class LockEvents {
  private readonly listeners = new Set<LockEventListener>();

  constructor(private readonly logger: LockLogger) {
    if (logger.debug) this.listeners.add(event => logger.debug!(describeEvent(event)));
  }

  /** Calls `listener` for every event from now on; returns the unsubscriber. */
  subscribe(listener: LockEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: LockEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.logger.error(`a lock event listener threw: ${String(err)}`);
      }
    }
  }
}

function describeEvent(event: LockEvent): string {
  switch (event.type) {
    case 'waiting':
      return `waiting for "${event.resource}" (${event.key})`;
    case 'acquired':
      return `acquired "${event.resource}" after ${event.waitedMs.toFixed(1)} ms, fencing token ${event.fencingToken}`;
    case 'released':
      return `released "${event.resource}" after ${event.heldMs.toFixed(1)} ms`;
    case 'lost':
      return `lost "${event.resource}" after ${event.heldMs.toFixed(1)} ms: ${event.reason}`;
    case 'failed':
      return `failed to acquire "${event.resource}" after ${event.waitedMs.toFixed(1)} ms: ${errorMessage(event.error)}`;
    case 'tick':
      return `tick ${event.scheduledAt.toISOString()} of "${event.job}" claimed after ${event.claimMs.toFixed(1)} ms, fencing token ${event.fencingToken}`;
    case 'tick-ended':
      return `tick ${event.scheduledAt.toISOString()} of "${event.job}" ${event.error === undefined ? 'ran' : `failed (${errorMessage(event.error)})`} in ${event.durationMs.toFixed(1)} ms`;
    case 'skipped':
      return `tick ${event.scheduledAt?.toISOString() ?? '(none)'} of "${event.job}" skipped: ${event.reason}${event.error === undefined ? '' : ` (${errorMessage(event.error)})`}`;
  }
}

function errorMessage(error: unknown): string {
  return (error as LockError)?.message ?? String(error);
}
