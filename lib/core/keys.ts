import { InvalidLockArgumentError } from './errors.js';

/**
 * Upper bound on a lock key in bytes. Far below etcd's request limit (1.5 MiB by default), so a
 * request carrying the key can never be refused for its size, and small enough to keep etcd's
 * in-memory key index sane.
 */
export const MAX_KEY_BYTES = 8192;

/**
 * `/` separates a resource from its waiters' keys, so it must never appear inside an encoded
 * name (else `a` would range over the waiters of `a/b`). `%` is escaped so the encoding is
 * reversible and injective.
 */
export function encodeResource(resource: string): string {
  return resource.replace(/%/g, '%25').replace(/\//g, '%2F');
}

/** The canonical order in which several locks are taken: by their encoded keys' bytes. */
export function compareResources(a: string, b: string): number {
  return Buffer.compare(Buffer.from(encodeResource(a)), Buffer.from(encodeResource(b)));
}

export function decodeResource(encoded: string): string {
  return encoded.replace(/%2F/g, '/').replace(/%25/g, '%');
}

/**
 * The key prefix under which every waiter of `resource` puts its key. It is the name that
 * `etcdctl lock <name>` and Go's `concurrency.NewMutex(session, <name>)` use, plus `/`, so locks
 * taken by either exclude ours and the other way round.
 */
export function resourcePrefix(prefix: string, resource: string): string {
  assertResourceName(resource);
  const value = `${prefix}${encodeResource(resource)}/`;
  if (Buffer.byteLength(value) + WAITER_SUFFIX_BYTES > MAX_KEY_BYTES) {
    throw new InvalidLockArgumentError(
      'resource',
      `the lock key would exceed ${MAX_KEY_BYTES} bytes (resource is ${Buffer.byteLength(resource)} bytes)`,
    );
  }
  return value;
}

/**
 * Bytes reserved after a resource prefix for a waiter's own part, `<lease hex>_<n><mode>`: at most
 * 16 hex digits of an int64 lease id, `_`, a base-36 sequence number (11 digits up to 2^53), and
 * the mode mark of lock-mode.ts (at most 12: `.s` and 10 digits of permits).
 */
const WAITER_SUFFIX_BYTES = 40;

/**
 * The key one acquisition puts under its resource's prefix: `<lease hex>_<n>`, then the mark of a
 * shared or semaphore holder (lock-mode.ts). The sequence number makes concurrent acquisitions on
 * one lease queue like any others, where Go's `concurrency.Mutex` (key `<lease hex>` alone) would
 * make them all owners at once.
 */
export function waiterKey(resourcePrefix: string, leaseHex: string, sequence: number, modeMark = ''): string {
  return `${resourcePrefix}${leaseHex}_${sequence.toString(36)}${modeMark}`;
}

/** True when `key` is a waiter key (of any resource) that an acquisition on this lease put. */
export function isWaiterKeyOfLease(key: string, leaseHex: string): boolean {
  return key.slice(key.lastIndexOf('/') + 1).startsWith(`${leaseHex}_`);
}

/**
 * A key under `prefix` that is never a lock key, for a watch that must see no event: every lock
 * key ends in `/<lease hex>_<n>`, so `<prefix>\0` (no `/` after the prefix) is none of them.
 */
export function idleWatchKey(prefix: string): string {
  return `${prefix}\0`;
}

export function assertResourceName(resource: unknown): asserts resource is string {
  if (typeof resource !== 'string') {
    throw new InvalidLockArgumentError('resource', `expected a string, got ${describeValue(resource)}`);
  }
  if (resource.length === 0) {
    throw new InvalidLockArgumentError('resource', 'must not be empty');
  }
  if (!resource.isWellFormed()) {
    // A lone surrogate would be replaced by U+FFFD when encoded, making two names collide.
    throw new InvalidLockArgumentError('resource', 'contains a lone UTF-16 surrogate');
  }
}

/** The end of the etcd range that holds every key starting with `prefix`. */
export function prefixRangeEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** A short rendering of a bad value for an error message (never dumps an object). */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}
