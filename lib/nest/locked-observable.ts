import { Observable, from, isObservable, type ObservableInput, type Subscription } from 'rxjs';
import type { EnteredLock } from './entered-lock.js';

/**
 * An Observable that takes a lock when subscribed, subscribes `produce()` under it, and releases
 * the lock on complete, error or unsubscribe, once the nested calls that re-entered it have
 * finished. Completion and errors are passed on only once the key is deleted, so a client holding
 * the response never finds its own lock still in place. Losing the lock errors the stream with the
 * `LockLostError` at once, and the stream completes only if the lock was held throughout (the
 * lease deadline is checked again at completion). Unsubscribing while still waiting cancels the wait.
 */
export function lockedObservable<T>(
  enter: (giveUp: AbortSignal) => Promise<EnteredLock>,
  produce: (entered: EnteredLock) => ObservableInput<T>,
): Observable<T> {
  return new Observable<T>(subscriber => {
    const giveUp = new AbortController();
    let waiting = true;
    let entered: EnteredLock | undefined;
    let inner: Subscription | undefined;
    const start = async () => {
      entered = await enter(giveUp.signal).finally(() => (waiting = false));
      const { lock, leave, exit } = entered;
      if (subscriber.closed) return void exit();
      const { signal } = lock;
      const onLost = () => subscriber.error(signal.reason);
      if (signal.aborted) return onLost();
      signal.addEventListener('abort', onLost, { once: true });
      subscriber.add(() => signal.removeEventListener('abort', onLost));
      const produced = produce(entered);
      // A handler's stream is already an Observable: subscribe to it as is, not through from().
      inner = (isObservable(produced) ? produced : from(produced)).subscribe({
        next: value => subscriber.next(value),
        error: err => void exit().then(() => subscriber.error(err)),
        complete: () =>
          void leave().then(() => {
            // Reading the signal checks the deadline: if it passed, onLost errors the stream now.
            if (!lock.signal.aborted) return exit().then(() => subscriber.complete());
          }),
      });
    };
    start().catch(err => subscriber.error(err));
    return () => {
      // Only a wait in progress needs cancelling (an abort builds a DOMException every time).
      if (waiting) giveUp.abort();
      inner?.unsubscribe();
      void entered?.exit();
    };
  });
}
