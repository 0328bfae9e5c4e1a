import { jest } from '@jest/globals';
import { LockEvents, LockHandle, LockLostError, LockSet, type LockEvent } from '../../lib/index.js';
import { runWhileHeld } from '../../lib/core/handle.js';
import { InMemoryLease } from '../../lib/testing/in-memory-lease.js';

/**
 * A lease with a validity deadline on the (faked) clock, as the etcd session has: past it the lease
 * is no longer alive although nothing has declared it lost, which is what a process sees when its
 * event loop was blocked past the TTL and no timer could run.
 */
class DeadlineLease extends InMemoryLease {
  constructor(private readonly deadline: number) {
    super('d1');
  }
  override get alive(): boolean {
    return super.alive && Date.now() < this.deadline;
  }
}

/** LockHandle, LockSet and runWhileHeld on fake timers: held throughout, released once, signalled on loss. */
describe('LockHandle, LockSet and runWhileHeld', () => {
  let events: LockEvent[];
  let deletions: string[];
  let lockEvents: LockEvents;
  let tokens: bigint;

  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
    events = [];
    deletions = [];
    tokens = 0n;
    lockEvents = new LockEvents({ warn() {}, error() {} });
    lockEvents.subscribe(event => events.push(event));
  });
  afterEach(() => jest.useRealTimers());

  const handle = (lease: InMemoryLease, resource = 'r') =>
    new LockHandle(resource, `${resource}/${lease.leaseHex}_${++tokens}`, tokens, lease, async h => void deletions.push(h.key), lockEvents);
  const blockPast = (ms: number) => jest.setSystemTime(Date.now() + ms);
  const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

  describe('LockHandle', () => {
    it('aborts its signal with a LockLostError naming the reason when its lease is lost', () => {
      const lease = new InMemoryLease('1');
      const lock = handle(lease);
      lease.lose('etcd expired it');
      expect(lock.signal.reason).toBeInstanceOf(LockLostError);
      expect((lock.signal.reason as Error).message).toContain('etcd expired it');
    });

    it('reads as lost once the lease deadline has passed, before any timer ran', () => {
      const lock = handle(new DeadlineLease(Date.now() + 2000));
      blockPast(2001);
      expect(jest.getTimerCount()).toBe(0);
      expect(lock.signal.aborted).toBe(true);
      expect(() => lock.throwIfLost()).toThrow(LockLostError);
    });

    it('stays held while the lease deadline is ahead', () => {
      const lock = handle(new DeadlineLease(Date.now() + 2000));
      blockPast(1999);
      expect(lock.lost).toBe(false);
    });

    it('deletes its key once, however often it is released', async () => {
      const lock = handle(new InMemoryLease('1'));
      await Promise.all([lock.release(), lock.release()]);
      await lock.release();
      expect(deletions).toEqual([lock.key]);
    });

    it('still deletes its key when released after the loss, without a released event', async () => {
      const lease = new InMemoryLease('1');
      const lock = handle(lease);
      lease.lose('gone');
      await lock.release();
      expect(deletions).toEqual([lock.key]);
      expect(events.map(e => e.type)).toEqual(['lost']);
    });

    it('is not lost when its lease ends after it was released', async () => {
      const lease = new InMemoryLease('1');
      const lock = handle(lease);
      await lock.release();
      lease.lose('later');
      expect(lock.signal.aborted).toBe(false);
      expect(events.map(e => e.type)).toEqual(['released']);
    });
  });

  describe('LockSet', () => {
    it('aborts its signal as soon as any one of its locks is lost', () => {
      const other = new InMemoryLease('2');
      const set = new LockSet([handle(new InMemoryLease('1'), 'a'), handle(other, 'b')]);
      const signal = set.signal;
      other.lose('b went');
      expect(signal.aborted).toBe(true);
      expect(signal.reason).toBeInstanceOf(LockLostError);
    });

    it('reads as lost once a lease deadline has passed, before any timer ran', () => {
      const set = new LockSet([handle(new DeadlineLease(Date.now() + 2000), 'a'), handle(new InMemoryLease('2'), 'b')]);
      blockPast(2001);
      expect(set.signal.aborted).toBe(true);
      expect(() => set.throwIfLost()).toThrow(LockLostError);
    });

    it('releases every lock once', async () => {
      const handles = [handle(new InMemoryLease('1'), 'a'), handle(new InMemoryLease('1'), 'b')];
      const set = new LockSet(handles);
      await Promise.all([set.release(), set.release()]);
      expect(deletions.sort()).toEqual(handles.map(h => h.key).sort());
    });

    it("gives each resource's fencing token, and a RangeError for a resource not in the set", () => {
      const [a, b] = [handle(new InMemoryLease('1'), 'a'), handle(new InMemoryLease('1'), 'b')];
      const set = new LockSet([a, b]);
      expect([set.fencingToken('a'), set.fencingToken('b')]).toEqual([a.fencingToken, b.fencingToken]);
      expect(() => set.fencingToken('c')).toThrow(RangeError);
    });
  });

  describe('runWhileHeld', () => {
    let releases: number;
    const release = async () => void releases++;
    beforeEach(() => (releases = 0));

    it("resolves with the section's value and releases once", async () => {
      await expect(runWhileHeld(handle(new InMemoryLease('1')), async () => 'done', release)).resolves.toBe('done');
      expect(releases).toBe(1);
    });

    it("passes the section's own error through and releases once", async () => {
      const failure = new Error('the section failed');
      await expect(runWhileHeld(handle(new InMemoryLease('1')), () => Promise.reject(failure), release)).rejects.toBe(failure);
      expect(releases).toBe(1);
    });

    it('rejects with the LockLostError as soon as the loss is known, while the section still runs', async () => {
      const lease = new InMemoryLease('1');
      const outcome = runWhileHeld(handle(lease), () => sleep(10_000), release).catch(err => err);
      await jest.advanceTimersByTimeAsync(1000);
      lease.lose('lost mid-section');
      expect(await outcome).toBeInstanceOf(LockLostError);
      expect(jest.now() - 1_000_000).toBe(1000);
    });

    it('releases only when the section settles after a loss, and then once', async () => {
      const lease = new InMemoryLease('1');
      const outcome = runWhileHeld(handle(lease), () => sleep(10_000), release).catch(() => undefined);
      lease.lose('lost mid-section');
      await outcome;
      expect(releases).toBe(0);
      await jest.advanceTimersByTimeAsync(10_000);
      expect(releases).toBe(1);
    });

    it('rejects a section that settles after the lease deadline passed, though no timer reported the loss', async () => {
      const lock = handle(new DeadlineLease(Date.now() + 2000));
      await expect(runWhileHeld(lock, () => (blockPast(2500), 'ok'), release)).rejects.toBeInstanceOf(LockLostError);
      expect(releases).toBe(1);
    });

    it('resolves a section that settles before the lease deadline', async () => {
      const lock = handle(new DeadlineLease(Date.now() + 2000));
      await expect(runWhileHeld(lock, () => (blockPast(1500), 'ok'), release)).resolves.toBe('ok');
    });

    it('does not run the section of a lock already lost, and releases it once', async () => {
      const lease = new InMemoryLease('1');
      const lock = handle(lease);
      lease.lose('before');
      const section = jest.fn(() => 'ran');
      await expect(runWhileHeld(lock, section, release)).rejects.toBeInstanceOf(LockLostError);
      expect(section).not.toHaveBeenCalled();
      expect(releases).toBe(1);
    });

    it('rejects a LockSet section when one of its locks is lost', async () => {
      const other = new InMemoryLease('2');
      const set = new LockSet([handle(new InMemoryLease('1'), 'a'), handle(other, 'b')]);
      const outcome = runWhileHeld(set, () => sleep(10_000), release).catch(err => err);
      other.lose('b went');
      expect(await outcome).toBeInstanceOf(LockLostError);
    });
  });
});
