import { InvalidLockArgumentError, LockError } from './errors.js';
import { describeValue } from './keys.js';

/**
 * This client already campaigns in (or leads) the election. etcd allows one candidacy per lease
 * per name (the key is `<prefix><name>/<lease hex>`), and two campaigns sharing one key would
 * let one's `resign()` end the other's leadership; so the second is refused. Resign first, or
 * keep the {@link Leadership} the first campaign returned.
 */
export class AlreadyCampaigningError extends LockError {
  constructor(readonly election: string) {
    super(`This client already campaigns in election "${election}" (one candidacy per lease per name)`);
  }
}

const ELECTION_NAME = /^[A-Za-z0-9._:-]{1,200}$/;

/** Largest proclaimed value, in bytes: a leader's value is read by every observer on every change. */
export const MAX_ELECTION_VALUE_BYTES = 64 * 1024;

/**
 * An election name ends up inside etcd keys (`<prefix><name>/<lease>`): `/` would nest one
 * election's candidates under another's, so names are 1 to 200 letters, digits or `. _ : -`.
 */
export function assertElectionName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !ELECTION_NAME.test(name)) {
    throw new InvalidLockArgumentError('election name', `expected 1 to 200 letters, digits or . _ : - (no /), got ${describeValue(name)}`);
  }
}

export function assertElectionValue(value: unknown): asserts value is string {
  if (typeof value !== 'string') throw new InvalidLockArgumentError('election value', `expected a string, got ${describeValue(value)}`);
  if (Buffer.byteLength(value) > MAX_ELECTION_VALUE_BYTES) {
    throw new InvalidLockArgumentError('election value', `at most ${MAX_ELECTION_VALUE_BYTES} bytes, got ${Buffer.byteLength(value)}`);
  }
}

export function assertElectionPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== 'string') throw new InvalidLockArgumentError('electionPrefix', `expected a string, got ${describeValue(prefix)}`);
}
