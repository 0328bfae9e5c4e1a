import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffPauses } from './backoff.js';
import { LockHandle, type LockLease } from './handle.js';
import type { LockEvents } from './lock-events.js';
import type { LockLogger } from './logger.js';

/** What a job whose previous run is still going does when its next tick comes. */
export type TickOverlap = 'forbid' | 'allow';

/** One scheduled tick of a job, as every instance computes it from the shared schedule. */
export interface TickClaimRequest {
  /** The job's name (checked by the caller: no `/`, not empty). */
  job: string;
  /** The tick's scheduled time: the claim's identity, the same on every instance. */
  scheduledAt: Date;
  /**
   * The skew window S, in ms. A claim answered later than `scheduledAt + S` on this instance's
   * clock does not run, and the claim key stays until `scheduledAt + 2·S` (and the job's end).
   */
  windowMs: number;
  overlap: TickOverlap;
}

/** Why an instance did not run a tick. */
export type TickSkipReason =
  /** Another instance claimed this tick first (the normal case on all instances but one). */
  | 'claimed-elsewhere'
  /** The job's previous run is still going (on this or another instance), and overlap is forbidden. */
  | 'still-running'
  /** The claim was answered after the skew window: too late to know the tick is not run elsewhere. */
  | 'late'
  /** etcd did not answer within the skew window (the tick may have run nowhere). */
  | 'unavailable'
  /** The application is shutting down: no new tick starts. */
  | 'shutting-down';

export type TickClaimResult = { won: true; lock: LockHandle } | { won: false; reason: TickSkipReason; error?: unknown };

/** A key as a claim read it back. */
export interface ClaimedKey {
  value: string;
  createRevision: bigint;
}

/** The answer to one put-if-absent of a tick's keys. */
export type PutAnswer = { created: true; revision: bigint } | { created: false; tick?: ClaimedKey; running?: ClaimedKey };

/** A lease the claim keys live on, with its id as the backend needs it. */
export interface ClaimLease extends LockLease {
  readonly leaseId: string;
}

/** Pauses between the attempts of a claim, and of a read or delete of its keys. */
const CLAIM_RETRY = { firstMs: 25, maxMs: 1000 };
const KEY_RETRY = { firstMs: 100, maxMs: 1000 };

/**
 * Claims of scheduled ticks: for each (job, scheduled time), one instance's put-if-absent
 * creates the tick's key, and that instance runs the tick. The key is kept for the skew window
 * after the tick and until the job ends, so an instance whose clock is behind (and fires later)
 * still finds it; it is then deleted, guarded on its create revision. Keys live on a lease, so a
 * crashed runner's keys go with it. A backend supplies the lease and three requests.
 *
 * Skew bound: with the clocks of any two instances less than S apart, and claims answered within
 * S of the tick on the claimer's clock, every acting claim lands while the first one's key exists
 * (it stays until the runner's `scheduledAt + 2·S`), so no tick runs twice.
 */
export abstract class TickClaims {
  /** Claims still holding keys; `close()` waits for them, so a shutdown cannot free a fresh tick. */
  private readonly holds = new Set<Promise<void>>();
  private closing = false;

  protected constructor(
    /** Prefix of every tick key: `<prefix><job>/<ISO time>` and `<prefix><job>/running`. */
    readonly prefix: string,
    protected readonly events: LockEvents,
    /** Where claim retries (debug) and failures go. */
    readonly logger: LockLogger,
  ) {}

  /** How long after we gave up on a request it may still land (its deadline), in ms. */
  protected readonly landingMs: number = 0;

  /** The lease to put claim keys on (a fresh one after a loss). */
  protected abstract lease(): Promise<ClaimLease>;

  /** In one transaction: put both keys (the running key only if given) if neither exists; else read them. */
  protected abstract putIfAbsent(
    keys: { tick: string; running?: string },
    value: string,
    lease: ClaimLease,
    timeoutMs: number,
  ): Promise<PutAnswer>;

  /** Reads a key (to find a put whose outcome was unknown). */
  protected abstract read(key: string): Promise<ClaimedKey | undefined>;

  /** Deletes `key` if its create revision is still `createRevision`. */
  protected abstract deleteIfCreatedAt(key: string, createRevision: bigint): Promise<void>;

  /** Releases the backend (after the holds have passed). */
  protected abstract closeBackend(): Promise<void>;

  /** The key of one tick of a job. */
  tickKey(job: string, scheduledAt: Date): string {
    return `${this.prefix}${job}/${scheduledAt.toISOString()}`;
  }

  /** The key that says a run of the job is going on (overlap `forbid`). */
  runningKey(job: string): string {
    return `${this.prefix}${job}/running`;
  }

  /**
   * Claims a tick. Won: the held lock (its fencing token is the claim key's create revision);
   * `release()` it when the job ends. Not won: why. Never throws for an outcome of the claim.
   */
  claim(request: TickClaimRequest): Promise<TickClaimResult> {
    if (this.closing) return Promise.resolve({ won: false, reason: 'shutting-down' });
    // close() waits for claims in flight too: one that wins must run on a lease that is still there.
    const result = this.attempt(request);
    this.hold(result.then(() => undefined));
    return result;
  }

  private async attempt(request: TickClaimRequest): Promise<TickClaimResult> {
    const keys = {
      tick: this.tickKey(request.job, request.scheduledAt),
      running: request.overlap === 'forbid' ? this.runningKey(request.job) : undefined,
    };
    const answerBy = request.scheduledAt.getTime() + request.windowMs;
    const holdUntil = request.scheduledAt.getTime() + 2 * request.windowMs;
    const started = performance.now();
    let lease: ClaimLease | undefined;
    let value = '';
    /** An attempt with this lease failed: its put may have landed unseen. */
    let failedPut = false;
    let lastError: unknown;
    for (const pause of backoffPauses(CLAIM_RETRY)) {
      const remainingMs = answerBy - Date.now();
      if (remainingMs <= 0) break;
      try {
        if (!lease?.alive) {
          // Keys put on a lost lease are gone with it: a new lease is a new claimant.
          failedPut = false;
          lease = await this.lease();
          value = `${lease.leaseHex}:${randomBytes(6).toString('hex')}`;
        }
        const answer = await this.putIfAbsent(keys, value, lease, remainingMs);
        // A retried put (etcd3's, or ours after a timeout) that finds its own key: the first one committed.
        const own = answer.created ? answer.revision : answer.tick?.value === value ? answer.tick.createRevision : undefined;
        if (own === undefined) {
          // An earlier attempt of ours that timed out may still land (only if the key is freed by then).
          if (failedPut) this.reapLater(keys, value, lease, holdUntil);
          return { won: false, reason: answer.created === false && answer.tick ? 'claimed-elsewhere' : 'still-running' };
        }
        const lock = this.heldLock(request, keys, own, lease, holdUntil);
        if (Date.now() > answerBy) {
          // Another instance may have claimed and deleted this tick already: at most once wins.
          void lock.release();
          return { won: false, reason: 'late' };
        }
        this.events.emit({
          type: 'acquired',
          resource: lock.resource,
          key: lock.key,
          fencingToken: own,
          waitedMs: performance.now() - started,
        });
        return { won: true, lock };
      } catch (err) {
        lastError = err;
        failedPut = lease !== undefined && lease.alive;
        if (Date.now() + pause >= answerBy) break;
        await sleep(pause);
      }
    }
    if (failedPut && lease) this.reapLater(keys, value, lease, holdUntil);
    return { won: false, reason: lastError === undefined ? 'late' : 'unavailable', error: lastError };
  }

  /**
   * Waits for running ticks to end and for every claim's keys to be deleted (2·S after its tick
   * at most, once its job ended), then closes the lease: a tick claimed just before a shutdown
   * cannot be claimed again by an instance whose clock is behind.
   */
  async close(): Promise<void> {
    this.closing = true;
    while (this.holds.size > 0) await Promise.allSettled([...this.holds]);
    await this.closeBackend();
  }

  /** The claim's lock; until it is released (the job ended), `close()` waits for it, so a shutdown does not cut a running tick's lease. */
  private heldLock(
    request: TickClaimRequest,
    keys: { tick: string; running?: string },
    token: bigint,
    lease: ClaimLease,
    holdUntil: number,
  ): LockHandle {
    const resource = `${request.job}@${request.scheduledAt.toISOString()}`;
    let released!: () => void;
    this.hold(new Promise<void>(resolve => (released = resolve)));
    return new LockHandle(
      resource,
      keys.tick,
      token,
      lease,
      () => {
        released();
        return this.finish(keys, token, lease, holdUntil);
      },
      this.events,
    );
  }

  /** The job ended: the running key goes now, the tick key once the skew window has passed. */
  private finish(keys: { tick: string; running?: string }, token: bigint, lease: ClaimLease, holdUntil: number): Promise<void> {
    const running = keys.running ? this.deleteWhileLeased(keys.running, token, lease) : Promise.resolve();
    this.hold(
      (async () => {
        await sleepUntil(holdUntil);
        await running;
        await this.deleteWhileLeased(keys.tick, token, lease);
      })(),
    );
    return running;
  }

  /**
   * A claim whose put may have landed unseen (a timeout, or a retry etcd3 gave up on): delete
   * whatever of ours it left, now (a landed running key would block the job's next ticks) and
   * again once a request sent now could no longer land. Nobody ran the tick, so freeing its key
   * early cannot make it run twice.
   */
  private reapLater(keys: { tick: string; running?: string }, value: string, lease: ClaimLease, holdUntil: number): void {
    const giveUp = () => !lease.alive;
    const reap = async () => {
      for (const key of [keys.tick, keys.running]) {
        if (!key) continue;
        const found = await this.retrying(() => this.read(key), `reading ${key}`, giveUp);
        if (found?.value === value) await this.retrying(() => this.deleteIfCreatedAt(key, found.createRevision), `deleting ${key}`, giveUp);
      }
    };
    const lastLanding = Math.max(holdUntil, Date.now() + this.landingMs);
    this.hold(
      (async () => {
        await reap();
        await sleepUntil(lastLanding);
        await reap();
      })(),
    );
  }

  /** Deletes a key of ours, retrying while it may still exist (a leaked running key would stop the job for good). */
  private async deleteWhileLeased(key: string, createRevision: bigint, lease: ClaimLease): Promise<void> {
    await this.retrying(
      () => this.deleteIfCreatedAt(key, createRevision),
      `deleting ${key}`,
      () => !lease.alive,
    );
  }

  /** Retries until done, the lease is gone (and the key with it), or the claims close. */
  private async retrying<T>(fn: () => Promise<T>, what: string, giveUp: () => boolean): Promise<T | undefined> {
    for (const pauses = backoffPauses(KEY_RETRY); ;) {
      try {
        return await fn();
      } catch (err) {
        if (giveUp() || this.closing) return undefined;
        const pause = pauses.next().value;
        this.logger.debug?.(`tick claims: ${what} failed (${(err as Error)?.message ?? String(err)}); retrying in ${pause} ms`);
        await sleep(pause);
      }
    }
  }

  private hold(work: Promise<void>): void {
    const tracked = work.catch(err => this.logger.warn(`tick claims: ${String(err)}`)).finally(() => this.holds.delete(tracked));
    this.holds.add(tracked);
  }
}

/** Resolves at `epochMs` on the wall clock, at once if that has passed. */
async function sleepUntil(epochMs: number): Promise<void> {
  const ms = epochMs - Date.now();
  if (ms > 0) await sleep(ms);
}
