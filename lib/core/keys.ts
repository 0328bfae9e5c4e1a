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
  // Room for the waiter suffix (lease id in hex + sequence) that follows the prefix.
  if (Buffer.byteLength(value) + 40 > MAX_KEY_BYTES) {
    throw new InvalidLockArgumentError(
      'resource',
      `the lock key would exceed ${MAX_KEY_BYTES} bytes (resource is ${Buffer.byteLength(resource)} bytes)`,
    );
  }
  return value;
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
