import { Observable, from, isObservable, type ObservableInput, type Subscription } from 'rxjs';
import type { LockHandle } from '../core/index.js';
import type { EnteredLock } from './lock.service.js';

/**
 * An Observable that takes a lock when subscribed, subscribes `produce()` under it, and releases
 * the lock on complete, error or unsubscribe. Completion and errors are passed on only once the
 * key is deleted, so a client holding the response never finds its own lock still in place.
 * Losing the lock errors the stream with the `LockLostError` at once. Unsubscribing while still
 * waiting cancels the wait.
 */
export function lockedObservable<T>(
  enter: (giveUp: AbortSignal) => Promise<EnteredLock>,
  produce: (entered: EnteredLock) => ObservableInput<T>,
): Observable<T> {
  return new Observable<T>(subscriber => {
    const giveUp = new AbortController();
    let waiting = true;
    let taken: readonly LockHandle[] = [];
    let inner: Subscription | undefined;
    const start = async () => {
      const entered = await enter(giveUp.signal).finally(() => (waiting = false));
      taken = entered.taken;
      if (subscriber.closed) return void release(taken);
      const { signal } = entered.lock;
      const onLost = () => subscriber.error(signal.reason);
      if (signal.aborted) return onLost();
      signal.addEventListener('abort', onLost, { once: true });
      subscriber.add(() => signal.removeEventListener('abort', onLost));
      const produced = produce(entered);
      // A handler's stream is already an Observable: subscribe to it as is, not through from().
      inner = (isObservable(produced) ? produced : from(produced)).subscribe({
        next: value => subscriber.next(value),
        error: err => void release(taken).then(() => subscriber.error(err)),
        complete: () => void release(taken).then(() => subscriber.complete()),
      });
    };
    start().catch(err => subscriber.error(err));
    return () => {
      // Only a wait in progress needs cancelling (an abort builds a DOMException every time).
      if (waiting) giveUp.abort();
      inner?.unsubscribe();
      void release(taken);
    };
  });
}

/** release() is idempotent and never rejects: if etcd is unreachable it retries in the background. */
function release(locks: readonly LockHandle[]): Promise<unknown> {
  return Promise.all(locks.map(lock => lock.release()));
}
