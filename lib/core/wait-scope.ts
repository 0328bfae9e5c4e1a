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
  // A plain flag and listener set rather than an AbortController: a scope is made for every
  // acquisition, and nearly all of them end without aborting.
  private ended = false;
  private abortReason: unknown;
  private readonly onAbort = new Set<(reason: unknown) => void>();
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly cleanups: Array<() => void> = [];

  constructor(
    resource: string,
    { waitTimeoutMs, statedTimeoutMs, signal: external }: Pick<AcquireOneOptions, 'waitTimeoutMs' | 'statedTimeoutMs' | 'signal'>,
    session: LockLease,
  ) {
    if (waitTimeoutMs <= MAX_TIMER_MS) {
      this.timer = setTimeout(() => this.abort(new LockTimeoutError(resource, statedTimeoutMs)), Math.max(0, waitTimeoutMs));
    }
    if (external) {
      const onAbort = () => this.abort(external.reason);
      external.addEventListener('abort', onAbort, { once: true });
      this.cleanups.push(() => external.removeEventListener('abort', onAbort));
      if (external.aborted) onAbort();
    }
    this.cleanups.push(
      session.onEnd(end =>
        this.abort(new LockLostError(resource, `the session was lost while waiting: ${end.reason}`, { cause: end.cause })),
      ),
    );
  }

  get aborted(): boolean {
    return this.ended;
  }

  get reason(): unknown {
    return this.abortReason;
  }

  throwIfAborted(): void {
    if (this.ended) throw this.abortReason;
  }

  /** Resolves with `promise`, or rejects with the abort reason if the scope ends first. */
  race<T>(promise: Promise<T>): Promise<T> {
    if (this.ended) return Promise.reject(this.abortReason);
    return new Promise<T>((resolve, reject) => {
      this.onAbort.add(reject);
      promise.then(
        value => {
          this.onAbort.delete(reject);
          resolve(value);
        },
        err => {
          this.onAbort.delete(reject);
          reject(err);
        },
      );
    });
  }

  dispose(): void {
    clearTimeout(this.timer);
    for (const cleanup of this.cleanups) cleanup();
  }

  private abort(reason: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.abortReason = reason;
    for (const reject of this.onAbort) reject(reason);
    this.onAbort.clear();
  }
}
