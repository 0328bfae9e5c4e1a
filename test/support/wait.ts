/**
 * Poll-with-deadline helper. Tests must wait for a condition, never sleep and hope.
 */

export interface WaitForOptions {
  /** Give up after this long (default 5000 ms). */
  timeoutMs?: number;
  /** Pause between two evaluations of the predicate (default 50 ms). */
  intervalMs?: number;
  /** Describes the awaited condition; part of the timeout error. */
  message?: string | (() => string);
}

/**
 * Resolves as soon as `predicate` returns (or resolves to) true.
 * A predicate that throws or rejects counts as "not yet"; its last error is
 * quoted in the timeout error. A predicate call that hangs is abandoned at the
 * deadline. Throws `Error("waitFor timed out after N ms: <message>")` on timeout.
 */
export async function waitFor(predicate: () => boolean | Promise<boolean>, options: WaitForOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const intervalMs = options.intervalMs ?? 50;
  const started = Date.now();
  const deadline = started + timeoutMs;
  let lastError: unknown;
  let attempts = 0;

  for (;;) {
    attempts++;
    const remaining = deadline - Date.now();
    try {
      const ok = await withDeadline(Promise.resolve().then(predicate), Math.max(remaining, 1));
      if (ok === true) return;
    } catch (err) {
      if (!(err instanceof DeadlineError)) lastError = err;
    }
    if (Date.now() >= deadline) break;
    await delay(Math.min(intervalMs, Math.max(deadline - Date.now(), 0)));
  }

  const message = typeof options.message === 'function' ? options.message() : (options.message ?? 'condition not met');
  const suffix = lastError === undefined ? '' : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
  throw new Error(`waitFor timed out after ${Date.now() - started} ms (${attempts} attempts): ${message}${suffix}`);
}

class DeadlineError extends Error {}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new DeadlineError('deadline')), ms);
    promise.then(
      value => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

function delay(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}
