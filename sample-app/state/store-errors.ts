/**
 * A write refused by the fencing check: a holder with a newer fencing token has written the
 * record since, so this writer's lock expired (paused, partitioned) and someone else took it.
 */
export class StaleFencingTokenError extends Error {
  constructor(
    readonly record: string,
    readonly token: bigint,
    readonly newerToken: bigint,
  ) {
    super(`write to "${record}" refused: fencing token ${token} is older than ${newerToken}, written by a later lock holder`);
    this.name = 'StaleFencingTokenError';
  }
}

/** The record kept changing under us: some writer ignores the lock. Never happens while everyone locks. */
export class StoreContentionError extends Error {
  constructor(
    readonly records: readonly string[],
    attempts: number,
  ) {
    super(`records ${records.join(', ')} changed under every one of ${attempts} attempts`);
    this.name = 'StoreContentionError';
  }
}

/** etcd could not be reached or did not answer in time; the outcome of a write is unknown. */
export class StoreUnavailableError extends Error {
  constructor(during: string, cause: unknown) {
    super(`etcd unavailable while ${during}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'StoreUnavailableError';
  }
}
