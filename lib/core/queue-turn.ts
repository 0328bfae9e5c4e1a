import { LockModeMismatchError } from './errors.js';
import { modeOfKey, type LockMode } from './lock-mode.js';

/** A key of a resource's queue, as the rules need it: its name (which says its mode) and its create revision. */
export interface QueuedKey {
  readonly key: { toString(): string };
  /** Decimal. */
  readonly createRevision: string;
}

/**
 * What a waiter waits for: the deletion of one key; a `change` of one key (its deletion, or the
 * rewrite its holder makes on entering, see {@link rewritesOnEntry}); or `holders`, any deletion
 * under the resource's prefix (`key` is then the prefix).
 */
export interface WaitOn {
  readonly key: string;
  /** The watched key's create revision (for `holders`, the first holder's): two equal WaitOns are one wait. */
  readonly createRevision: string;
  readonly on: 'deletion' | 'change' | 'holders';
}

/** Whether a waiter may enter now, and if not, what to wait for before looking again. */
export type Turn = { readonly enter: true } | { readonly enter: false; readonly wait: WaitOn };

const ENTER: Turn = Object.freeze({ enter: true });

/**
 * Which keys ahead of ours a view must read for {@link turnOf} to decide: the `oldest` few (or
 * all) and the `newest` few, by create revision.
 */
export interface AheadReads {
  readonly oldest?: number | 'all';
  readonly newest?: number;
}

/**
 * The reads each mode needs. An exclusive waiter (the mutex) and a semaphore's later waiters
 * need only the key right ahead; a semaphore's count needs its `permits + 1` oldest keys; a
 * shared waiter needs every key ahead, to find the newest exclusive one among them.
 */
export function aheadReads(mode: LockMode): AheadReads {
  if (mode.kind === 'exclusive') return EXCLUSIVE_READS;
  if (mode.kind === 'shared') return SHARED_READS;
  return { oldest: mode.permits + 1, newest: 1 };
}

const EXCLUSIVE_READS: AheadReads = Object.freeze({ newest: 1 });
const SHARED_READS: AheadReads = Object.freeze({ oldest: 'all' });

/**
 * The one rule of the queue, per mode, given the keys ahead of ours (oldest first: every key
 * ahead, or the ones {@link aheadReads} asked for, the newest last):
 * - exclusive (the mutex, and every key of etcdctl or Go): enter when nothing is ahead, else wait
 *   for the deletion of the key right ahead;
 * - shared: enter when only shared keys are ahead, else wait for the deletion of the newest other
 *   key ahead (readers arriving after a queued writer wait behind it);
 * - semaphore of N: enter when fewer than N keys are ahead. With exactly N ahead (the first
 *   waiter), wait for any deletion among them; with more, wait for a change of the key right
 *   ahead: it is rewritten when its holder enters, which makes us the first waiter. So a grant
 *   wakes exactly the waiter that may now enter, and the one that becomes first.
 * @throws LockModeMismatchError when the resource is held in another mode (another N, or a
 *   semaphore mixed with locks).
 */
export function turnOf(resource: string, mode: LockMode, prefix: string, ahead: readonly QueuedKey[]): Turn {
  const newest = ahead.at(-1);
  if (!newest) return ENTER;
  if (mode.kind === 'exclusive') return waitFor(newest, 'deletion');
  if (mode.kind === 'shared') {
    const oldestMode = modeOfKey(ahead[0].key.toString());
    if (oldestMode.kind === 'semaphore') throw new LockModeMismatchError(resource, mode, oldestMode);
    for (let i = ahead.length - 1; i >= 0; i--) {
      if (modeOfKey(ahead[i].key.toString()).kind !== 'shared') return waitFor(ahead[i], 'deletion');
    }
    return ENTER;
  }
  const { permits } = mode;
  // The semaphore's N is the oldest key's; a key of another mode within the first N+1 could be
  // granted with us.
  for (const queued of ahead.slice(0, permits + 1)) {
    const found = modeOfKey(queued.key.toString());
    if (found.kind !== 'semaphore' || found.permits !== permits) throw new LockModeMismatchError(resource, mode, found);
  }
  if (ahead.length < permits) return ENTER;
  if (ahead.length === permits) return { enter: false, wait: { key: prefix, createRevision: ahead[0].createRevision, on: 'holders' } };
  return waitFor(newest, 'change');
}

/** True for the modes whose holders rewrite their key on entering after a wait, to wake the waiter behind. */
export function rewritesOnEntry(mode: LockMode): boolean {
  return mode.kind === 'semaphore';
}

function waitFor(queued: QueuedKey, on: WaitOn['on']): Turn {
  return { enter: false, wait: { key: queued.key.toString(), createRevision: queued.createRevision, on } };
}

/**
 * The keys ahead, oldest first, from a read of the `oldest` few and one of the `newest` few
 * (newest first); a key in both counts once.
 */
export function mergeAhead<K extends QueuedKey>(oldest: readonly K[], newestFirst: readonly K[]): K[] {
  const ahead = [...oldest];
  const last = ahead.at(-1);
  for (let i = newestFirst.length - 1; i >= 0; i--) {
    const queued = newestFirst[i];
    if (!last || BigInt(queued.createRevision) > BigInt(last.createRevision)) ahead.push(queued);
  }
  return ahead;
}

/**
 * Splits a queue (oldest first) into its holders and its waiters, as {@link turnOf} grants:
 * holders are always the queue's first keys.
 */
export function splitQueue<E extends { key: string; fencingToken: bigint }>(
  resource: string,
  prefix: string,
  entries: readonly E[],
): { holders: E[]; waiters: E[] } {
  const keys = entries.map(entry => ({ key: entry.key, createRevision: entry.fencingToken.toString() }));
  let held = 0;
  while (held < entries.length && holds(resource, prefix, keys, held)) held++;
  return { holders: entries.slice(0, held), waiters: entries.slice(held) };
}

function holds(resource: string, prefix: string, keys: readonly QueuedKey[], index: number): boolean {
  try {
    return turnOf(resource, modeOfKey(keys[index].key.toString()), prefix, keys.slice(0, index)).enter;
  } catch {
    return false; // a key of another mode waits until it gives up
  }
}
