import { jest } from '@jest/globals';
import { LockLostError, LockTimeoutError } from '../../lib/index.js';
import { WaitScope } from '../../lib/core/wait-scope.js';
import { InMemoryLease } from '../../lib/testing/in-memory-lease.js';

/** WaitScope on fake timers: what ends a wait, and with which error. */
describe('WaitScope', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  const never = () => new Promise<never>(() => undefined);
  const options = (waitTimeoutMs: number, signal?: AbortSignal) => ({
    waitTimeoutMs,
    statedTimeoutMs: waitTimeoutMs,
    tryOnly: false,
    signal,
  });

  it('rejects a pending wait with LockTimeoutError when the wait timeout runs out, not before', async () => {
    const scope = new WaitScope('r', options(1000), new InMemoryLease('1'));
    const outcome = scope.race(never()).catch(err => err);
    await jest.advanceTimersByTimeAsync(999);
    expect(scope.aborted).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    const err = await outcome;
    expect(err).toBeInstanceOf(LockTimeoutError);
    expect((err as LockTimeoutError).waitTimeoutMs).toBe(1000);
    scope.dispose();
  });

  it('sets no timer for an infinite wait', () => {
    const scope = new WaitScope('r', options(Infinity), new InMemoryLease('1'));
    expect(jest.getTimerCount()).toBe(0);
    scope.dispose();
  });

  it("rejects with the caller's abort reason, also when the signal was aborted before the wait began", async () => {
    const controller = new AbortController();
    const scope = new WaitScope('r', options(1000, controller.signal), new InMemoryLease('1'));
    const outcome = scope.race(never()).catch(err => err);
    controller.abort(new Error('caller gave up'));
    expect(((await outcome) as Error).message).toBe('caller gave up');
    scope.dispose();

    const early = new WaitScope('r', options(1000, AbortSignal.abort(new Error('already'))), new InMemoryLease('1'));
    expect(() => early.throwIfAborted()).toThrow('already');
    early.dispose();
  });

  it('rejects with LockLostError naming the reason when the lease ends while waiting', async () => {
    const lease = new InMemoryLease('1');
    const scope = new WaitScope('r', options(1000), lease);
    const outcome = scope.race(never()).catch(err => err);
    lease.lose('etcd said so');
    const err = await outcome;
    expect(err).toBeInstanceOf(LockLostError);
    expect((err as Error).message).toContain('etcd said so');
    scope.dispose();
  });

  it('passes a settled promise through, and dispose() leaves no timer or listener behind', async () => {
    const controller = new AbortController();
    const scope = new WaitScope('r', options(1000, controller.signal), new InMemoryLease('1'));
    await expect(scope.race(Promise.resolve('granted'))).resolves.toBe('granted');
    scope.dispose();
    expect(jest.getTimerCount()).toBe(0);
    controller.abort(new Error('late'));
    expect(scope.aborted).toBe(false);
  });
});
