import { InvalidLockArgumentError } from './errors.js';
import { describeValue } from './keys.js';

/**
 * How a lock is held: `exclusive` (the default, a mutex: one holder), `shared` (a reader of a
 * read/write lock: readers hold together, never with an exclusive holder) or `semaphore` (at
 * most `permits` holders at once).
 */
export type LockMode =
  { readonly kind: 'exclusive' } | { readonly kind: 'shared' } | { readonly kind: 'semaphore'; readonly permits: number };

export const EXCLUSIVE: LockMode = Object.freeze({ kind: 'exclusive' });
export const SHARED: LockMode = Object.freeze({ kind: 'shared' });

/**
 * Largest `permits`: its decimal digits must fit in the bytes a key reserves for its waiter part
 * (see keys.ts), and no deployment needs more holders than this.
 */
export const MAX_PERMITS = 2 ** 31 - 1;

/** The mode asked for by `{ shared, permits }`, checked: every bad combination names its cause. */
export function resolveLockMode(shared: unknown, permits: unknown, field = ''): LockMode {
  if (shared !== undefined && typeof shared !== 'boolean') {
    throw new InvalidLockArgumentError(`${field}shared`, `expected a boolean, got ${describeValue(shared)}`);
  }
  if (permits === undefined) return shared ? SHARED : EXCLUSIVE;
  if (typeof permits !== 'number' || !Number.isInteger(permits) || permits < 1 || permits > MAX_PERMITS) {
    throw new InvalidLockArgumentError(
      `${field}permits`,
      `expected a whole number from 1 to ${MAX_PERMITS}, got ${describeValue(permits)}`,
    );
  }
  if (shared) {
    throw new InvalidLockArgumentError(
      `${field}permits`,
      'a semaphore has no shared holders; give either permits or shared: true, not both',
    );
  }
  return { kind: 'semaphore', permits };
}

export function sameMode(a: LockMode, b: LockMode): boolean {
  return a.kind === b.kind && (a.kind !== 'semaphore' || a.permits === (b as { permits: number }).permits);
}

/**
 * What a waiter key says about its holder's mode, after its `<lease hex>_<n>` part: nothing for
 * an exclusive holder (so that the keys of `etcdctl lock` and Go's Mutex, plain `<lease hex>`,
 * count as exclusive), `.r` for a shared one, `.s<permits>` for a semaphore's. Kept in the name,
 * not the value, so the key-only reads of the queue see it.
 */
export function modeSuffix(mode: LockMode): string {
  if (mode.kind === 'semaphore') return `.s${mode.permits}`;
  return mode.kind === 'shared' ? '.r' : '';
}

/** Longest {@link modeSuffix}: `.s` and the digits of {@link MAX_PERMITS}. */
export const MAX_MODE_SUFFIX_BYTES = 2 + String(MAX_PERMITS).length;

/** The mode of whoever put `key` (any key of a resource's queue, ours or not). */
export function modeOfKey(key: string): LockMode {
  const own = key.slice(key.lastIndexOf('/') + 1);
  const mark = /_[0-9a-z]+\.(r|s([1-9][0-9]*))$/.exec(own);
  if (!mark) return EXCLUSIVE;
  if (mark[1] === 'r') return SHARED;
  const permits = Number(mark[2]);
  return permits <= MAX_PERMITS ? { kind: 'semaphore', permits } : EXCLUSIVE;
}
