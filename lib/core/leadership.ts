import { assertElectionValue } from './election-errors.js';
import { LockLostError } from './errors.js';
import type { LockHandle } from './handle.js';

/** What a backend does for one won election; the {@link Leadership} wraps it. */
export interface LeadershipBackend {
  /** Puts `value` on the leader key if it still has our create revision; false when it is gone. */
  proclaim(value: string): Promise<boolean>;
}

/**
 * This client leads an election: its key (`<prefix><name>/<lease hex>`) has the lowest create
 * revision among the candidates. Kept until `resign()` or until it is lost (the lease expired or
 * could not be renewed in time, the key was deleted, the client closed).
 *
 * As for a lock, leading is only as safe as the lease: a paused process may still believe it
 * leads after etcd expired its lease. Heed `signal`, and pass `fencingToken` with every write
 * that only the leader may make, to a store that refuses a token lower than the highest it saw.
 */
export class Leadership {
  private proclaimed: string;

  /** @internal Created by an election backend only. */
  constructor(
    /** The election's name as given to `campaign`. */
    readonly name: string,
    /** @internal The held leader key, as a lock: `lockService.current()` sees it inside `@LeaderOnly`. */
    readonly lock: LockHandle,
    value: string,
    private readonly backend: LeadershipBackend,
    /** Resolves once the leadership ended: lost, or resigned. */
    readonly ended: Promise<void>,
  ) {
    this.proclaimed = value;
  }

  /** The leader key, `<electionPrefix><name>/<lease id hex>` (as `etcdctl elect` names it). */
  get key(): string {
    return this.lock.key;
  }

  /** The leader key's create revision: greater than that of every earlier leader of this election. */
  get fencingToken(): bigint {
    return this.lock.fencingToken;
  }

  /** The lease the leader key lives on, in hex. */
  get leaseId(): string {
    return this.lock.leaseId;
  }

  /** The value this leader proclaims (what `leader()` and `etcdctl elect -l` show). */
  get value(): string {
    return this.proclaimed;
  }

  /**
   * Aborts with a `LockLostError` when the leadership is lost, strictly before etcd can expire
   * the lease (the session keeps its own deadline). Reading it checks that deadline on the spot.
   */
  get signal(): AbortSignal {
    return this.lock.signal;
  }

  /** True once the leadership is known to be lost (not after `resign()`). */
  get lost(): boolean {
    return this.lock.lost;
  }

  /** True once `resign()` was called. */
  get resigned(): boolean {
    return this.lock.released;
  }

  /** Throws the `LockLostError` if the leadership is lost. */
  throwIfLost(): void {
    this.lock.throwIfLost();
  }

  /**
   * Changes the leader's value without a new election (Go's `Proclaim`): one transaction that
   * puts the value only if the leader key still has this leadership's create revision.
   * @throws LockLostError when the leadership is lost or was resigned (the key is then left alone).
   */
  async proclaim(value: string): Promise<void> {
    assertElectionValue(value);
    if (this.resigned) throw new LockLostError(this.lock.resource, 'the leadership was resigned');
    this.throwIfLost();
    if (!(await this.backend.proclaim(value))) {
      this.lock.markLost('our leader key is gone (deleted, or its lease expired)');
      this.throwIfLost();
    }
    this.proclaimed = value;
  }

  /**
   * Steps down: deletes the leader key if it still has this leadership's create revision, so the
   * next candidate leads at once. Idempotent, and safe after a loss (never deletes another's key).
   */
  resign(): Promise<void> {
    return this.lock.release();
  }
}
