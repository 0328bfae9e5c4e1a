import { EtcdLeaseInvalidError, type Etcd3 } from 'etcd3';
import { InvalidLockArgumentError } from './errors.js';
import { toLockError } from './etcd-errors.js';
import type { LeaseEnd, LockLease } from './handle.js';
import { KeepAliveStream } from './keepalive-stream.js';
import { LeaseDeadline, defaultLossMarginMs, instantOn, systemClock, type Instant, type SessionClock } from './lease-deadline.js';
import type { LockLogger } from './logger.js';

export interface SessionOptions {
  /** Requested lease TTL in whole seconds. */
  ttl: number;
  /** Deadline for each unary etcd call, in ms. */
  requestTimeoutMs: number;
  /** How long before the earliest possible server-side expiry the session declares itself lost. */
  lossMarginMs?: number;
  logger: LockLogger;
  /** The clocks the deadline is kept on; a seam for tests that fake a host suspend. */
  clock?: SessionClock;
}

/** Why a session ended; every lock held on it is lost for this reason. */
export type SessionEnd = LeaseEnd;

type LossListener = (end: SessionEnd) => void;

/**
 * One etcd lease shared by every lock a client holds, so keepalive traffic does not grow with
 * the number of locks.
 *
 * etcd3's own `Lease` reports loss only after 2×TTL without renewal, a whole TTL after the
 * server may have expired the lease and handed our locks to someone else. So this session renews
 * the lease itself and keeps its own deadline, on the monotonic and the wall clock: the send time
 * of the last acknowledged keepalive + the TTL it granted − a margin. The server cannot expire the
 * lease before that instant (it received the keepalive after we sent it), so when the deadline
 * passes we declare loss strictly before anyone else could be granted our locks.
 *
 * A loss declared by that deadline leaves the lease to etcd for the margin: holders were told
 * `margin` before the earliest expiry so that they can stop, and revoking at once would hand
 * their locks to successors one round trip after the signal. Only after the margin is the lease
 * revoked (in case the server still keeps it); `close()` revokes at once.
 */
export class Session implements LockLease {
  readonly leaseHex: string;
  private readonly deadline: LeaseDeadline;
  private readonly keepAlives: KeepAliveStream;
  private ended: SessionEnd | undefined;
  private readonly listeners = new Set<LossListener>();
  private readonly renewalListeners = new Set<() => void>();
  private readonly renewEveryMs: number;
  private renewTimer: NodeJS.Timeout | undefined;
  private lossTimer: NodeJS.Timeout | undefined;
  private revokeTimer: NodeJS.Timeout | undefined;
  private revoked: Promise<void> | undefined;

  private constructor(
    private readonly client: Etcd3,
    /** The lease id, as etcd3 reports it (a decimal string). */
    readonly leaseId: string,
    /** The TTL etcd actually granted, in seconds. */
    readonly grantedTtl: number,
    grantSentAt: Instant,
    private readonly options: SessionOptions,
  ) {
    this.leaseHex = BigInt(leaseId).toString(16);
    const clock = options.clock ?? systemClock;
    this.renewEveryMs = (grantedTtl * 1000) / 3;
    this.deadline = new LeaseDeadline(clock, grantedTtl, options.lossMarginMs ?? defaultLossMarginMs(grantedTtl), grantSentAt);
    this.keepAlives = new KeepAliveStream(
      client,
      {
        checkDeadline: () => this.checkDeadline(),
        answered: (sentAt, ttl) => this.onRenewal(sentAt, ttl),
        // Retry soon rather than at the next regular renewal: the deadline keeps running meanwhile.
        broken: () => this.scheduleRenewal(Math.min(100, this.renewEveryMs)),
      },
      { leaseId, leaseHex: this.leaseHex, stallBoundMs: this.renewEveryMs / 2, clock, logger: options.logger },
    );
    this.armLossTimer();
    this.scheduleRenewal(this.renewEveryMs);
  }

  /** Grants a lease and starts renewing it. */
  static async open(client: Etcd3, options: SessionOptions, grantTimeoutMs = options.requestTimeoutMs): Promise<Session> {
    const sentAt = instantOn(options.clock ?? systemClock);
    let grant;
    try {
      grant = await client.leaseClient.leaseGrant({ TTL: options.ttl }, { deadline: Date.now() + grantTimeoutMs });
    } catch (err) {
      throw toLockError(err, 'granting the session lease');
    }
    const granted = Number(grant.TTL);
    if (granted > options.ttl) {
      // etcd silently raises a TTL below its minimum (1.5 × election timeout). Loss would then be
      // detected later than the user configured, so refuse instead of pretending.
      await client.leaseClient.leaseRevoke({ ID: grant.ID }).catch(() => undefined);
      throw new InvalidLockArgumentError(
        'ttl',
        `${options.ttl} s is below this etcd cluster's minimum lease TTL (it granted ${granted} s); use ttl >= ${granted}`,
      );
    }
    return new Session(client, grant.ID, granted, sentAt, options);
  }

  /** True until the lease is lost or the session closed. */
  get alive(): boolean {
    return this.ended === undefined && this.deadline.msLeft() > 0;
  }

  get end(): SessionEnd | undefined {
    return this.ended;
  }

  /** Milliseconds left before this session would declare itself lost without another renewal. */
  get remainingMs(): number {
    return this.ended ? 0 : Math.max(0, this.deadline.msLeft());
  }

  /** True while a renewal is overdue (etcd slow or unreachable): the lease still holds, for now. */
  get renewalOverdue(): boolean {
    return this.deadline.msSinceRenewal() > this.renewEveryMs * 1.5;
  }

  /** Registers a listener called once when the session ends; returns its remover. */
  onEnd(listener: LossListener): () => void {
    if (this.ended) {
      listener(this.ended);
      return () => undefined;
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Calls `listener` after every acknowledged renewal; returns its remover. */
  onRenewed(listener: () => void): () => void {
    this.renewalListeners.add(listener);
    return () => this.renewalListeners.delete(listener);
  }

  /**
   * Declares the session lost: listeners fire now. The lease is revoked (best-effort) only once
   * the server itself could have expired it and at least the margin from now, so that holders
   * keep the whole margin to stop before anyone else is granted their locks; with `leaseGone`
   * (etcd said so) at once.
   */
  lose(reason: string, cause?: unknown, { leaseGone = false } = {}): void {
    if (!this.finish({ reason, cause })) return;
    this.options.logger.warn(`etcd lease ${this.leaseHex} lost: ${reason}`);
    // The margin counts from now, when holders are told, even if this process noticed the
    // deadline late (a busy event loop): they get all of it.
    const waitMs = leaseGone ? 0 : Math.max(this.deadline.marginMs, this.deadline.msToEarliestServerExpiry());
    // Unref'd: a process that exits meanwhile leaves the lease to expire on the server.
    this.revokeTimer = setTimeout(() => void this.revokeOnce().catch(() => undefined), waitMs);
    this.revokeTimer.unref();
  }

  /** Ends the session and revokes the lease at once, deleting every key bound to it. */
  async close(): Promise<void> {
    this.finish({ reason: 'the lock client was closed' });
    await this.revokeOnce();
  }

  private revokeOnce(): Promise<void> {
    clearTimeout(this.revokeTimer);
    return (this.revoked ??= this.revoke());
  }

  private async revoke(): Promise<void> {
    try {
      await this.client.leaseClient.leaseRevoke({ ID: this.leaseId }, { deadline: Date.now() + this.options.requestTimeoutMs });
    } catch (err) {
      if (!(err instanceof EtcdLeaseInvalidError)) throw toLockError(err, 'revoking the lease');
    }
  }

  private finish(end: SessionEnd): boolean {
    if (this.ended) return false;
    this.ended = end;
    clearTimeout(this.renewTimer);
    clearTimeout(this.lossTimer);
    this.keepAlives.close();
    for (const listener of this.listeners) listener(end);
    this.listeners.clear();
    this.renewalListeners.clear();
    return true;
  }

  private armLossTimer(): void {
    clearTimeout(this.lossTimer);
    // Node may fire a timer slightly before performance.now() reaches its due time (libuv counts
    // whole milliseconds). Then wait for the rest: left alone, the loss would only be noticed at
    // the next renewal tick, up to TTL/3 later, after etcd may have expired the lease.
    this.lossTimer = setTimeout(
      () => {
        if (this.checkDeadline()) this.armLossTimer();
      },
      Math.max(0, this.deadline.msLeft()),
    );
  }

  private checkDeadline(): boolean {
    if (this.ended) return false;
    if (this.deadline.msLeft() <= 0) {
      this.lose('the lease was not renewed in time (etcd unreachable, or this process stalled)');
      return false;
    }
    return true;
  }

  private scheduleRenewal(delayMs: number): void {
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => {
      this.keepAlives.renew();
      this.scheduleRenewal(this.renewEveryMs);
    }, delayMs);
  }

  private onRenewal(sentAt: Instant, ttl: number): void {
    if (ttl <= 0) {
      this.lose('etcd reports that the lease has expired', undefined, { leaseGone: true });
      return;
    }
    this.deadline.renewed(sentAt, ttl);
    this.armLossTimer();
    for (const listener of this.renewalListeners) listener();
  }
}
