import { LockLostError, LockTimeoutError } from './errors.js';
import type { LockLease } from './handle.js';
import type { AcquireOneOptions } from './lock-client.js';

/** Longest delay setTimeout accepts; a longer wait is simply not timed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Everything that may end one acquisition early: its wait timeout, the caller's AbortSignal and
 * the loss of the session it queues on. `race` makes every await of the acquisition give way to
 * the first of them, with the matching error.
 */
export class WaitScope {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly cleanups: Array<() => void> = [];

  constructor(resource: string, { waitTimeoutMs, statedTimeoutMs, signal: external }: AcquireOneOptions, session: LockLease) {
    const abort = (reason: unknown) => this.controller.abort(reason);
    if (waitTimeoutMs <= MAX_TIMER_MS) {
      this.timer = setTimeout(() => abort(new LockTimeoutError(resource, statedTimeoutMs)), Math.max(0, waitTimeoutMs));
    }
    if (external) {
      const onAbort = () => abort(external.reason);
      external.addEventListener('abort', onAbort, { once: true });
      this.cleanups.push(() => external.removeEventListener('abort', onAbort));
      if (external.aborted) onAbort();
    }
    this.cleanups.push(
      session.onEnd(end =>
        abort(new LockLostError(resource, `the session was lost while waiting: ${end.reason}`, { cause: end.cause })),
      ),
    );
  }

  get aborted(): boolean {
    return this.controller.signal.aborted;
  }

  get reason(): unknown {
    return this.controller.signal.reason;
  }

  throwIfAborted(): void {
    this.controller.signal.throwIfAborted();
  }

  /** Resolves with `promise`, or rejects with the abort reason if the scope ends first. */
  race<T>(promise: Promise<T>): Promise<T> {
    const signal = this.controller.signal;
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      promise.then(
        value => {
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        err => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }

  dispose(): void {
    clearTimeout(this.timer);
    for (const cleanup of this.cleanups) cleanup();
  }
}
