import { EtcdLeaseInvalidError, type Etcd3, type IDuplexStream, type ILeaseKeepAliveRequest, type ILeaseKeepAliveResponse } from 'etcd3';
import { InvalidLockArgumentError } from './errors.js';
import { toLockError } from './etcd-errors.js';
import type { LeaseEnd, LockLease } from './handle.js';
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

/**
 * The two clocks a session's deadline is kept on. The monotonic one is immune to wall-clock
 * steps but stops while the host is suspended (Linux CLOCK_MONOTONIC, which `performance.now()`
 * reads), while etcd's lease runs on; the wall clock keeps counting through a suspend. The lease
 * is declared lost as soon as either says the deadline passed (a wall-clock step forward costs a
 * spurious loss, never a late one).
 */
export interface SessionClock {
  /** Milliseconds on a monotonic clock (default `performance.now()`). */
  monotonic(): number;
  /** Milliseconds on the wall clock (default `Date.now()`). */
  wall(): number;
}

const systemClock: SessionClock = { monotonic: () => performance.now(), wall: () => Date.now() };

/** One instant, read on both clocks. */
interface Instant {
  mono: number;
  wall: number;
}

/** Why a session ended; every lock held on it is lost for this reason. */
export type SessionEnd = LeaseEnd;

type LossListener = (end: SessionEnd) => void;
type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

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
  /** Loss is declared at this instant, on whichever clock reaches it first. */
  private deadline: Instant;
  /** Send time of the last acknowledged keepalive (or of the grant). */
  private lastRenewal: Instant;
  private readonly clock: SessionClock;
  private ended: SessionEnd | undefined;
  private readonly listeners = new Set<LossListener>();
  private readonly renewalListeners = new Set<() => void>();
  private readonly renewEveryMs: number;
  private readonly marginMs: number;
  private stream: KeepAliveStream | undefined;
  private opening = false;
  /** Send times of keepalives not yet answered; etcd answers a stream's requests in order. */
  private inFlight: Instant[] = [];
  private renewTimer: NodeJS.Timeout | undefined;
  private lossTimer: NodeJS.Timeout | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
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
    this.clock = options.clock ?? systemClock;
    this.renewEveryMs = (grantedTtl * 1000) / 3;
    this.marginMs = options.lossMarginMs ?? Math.min(1000, Math.max(100, grantedTtl * 100));
    this.lastRenewal = grantSentAt;
    this.deadline = this.deadlineAfter(grantSentAt, grantedTtl);
    this.armLossTimer();
    this.scheduleRenewal(this.renewEveryMs);
  }

  /** Grants a lease and starts renewing it. */
  static async open(client: Etcd3, options: SessionOptions, grantTimeoutMs = options.requestTimeoutMs): Promise<Session> {
    const clock = options.clock ?? systemClock;
    const sentAt = { mono: clock.monotonic(), wall: clock.wall() };
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
    return this.ended === undefined && this.msToDeadline() > 0;
  }

  get end(): SessionEnd | undefined {
    return this.ended;
  }

  /** Milliseconds left before this session would declare itself lost without another renewal. */
  get remainingMs(): number {
    return this.ended ? 0 : Math.max(0, this.msToDeadline());
  }

  /** True while a renewal is overdue (etcd slow or unreachable): the lease still holds, for now. */
  get renewalOverdue(): boolean {
    return this.clock.monotonic() - this.lastRenewal.mono > this.renewEveryMs * 1.5;
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
    const earliestServerExpiry = this.lastRenewal.mono + this.grantedTtl * 1000;
    const waitMs = leaseGone ? 0 : Math.max(this.marginMs, earliestServerExpiry - this.clock.monotonic());
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
    clearTimeout(this.stallTimer);
    this.stream?.end();
    this.stream = undefined;
    for (const listener of this.listeners) listener(end);
    this.listeners.clear();
    this.renewalListeners.clear();
    return true;
  }

  /** The deadline `ttl` seconds after a keepalive (or the grant) sent at `sentAt`, less the margin. */
  private deadlineAfter(sentAt: Instant, ttl: number): Instant {
    const lifetime = ttl * 1000 - this.marginMs;
    return { mono: sentAt.mono + lifetime, wall: sentAt.wall + lifetime };
  }

  /** Time left before the deadline, by whichever clock is further along. */
  private msToDeadline(): number {
    return Math.min(this.deadline.mono - this.clock.monotonic(), this.deadline.wall - this.clock.wall());
  }

  private now(): Instant {
    return { mono: this.clock.monotonic(), wall: this.clock.wall() };
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
      Math.max(0, this.msToDeadline()),
    );
  }

  private checkDeadline(): boolean {
    if (this.ended) return false;
    if (this.msToDeadline() <= 0) {
      this.lose('the lease was not renewed in time (etcd unreachable, or this process stalled)');
      return false;
    }
    return true;
  }

  private scheduleRenewal(delayMs: number): void {
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => {
      this.renew();
      this.scheduleRenewal(this.renewEveryMs);
    }, delayMs);
  }

  private renew(): void {
    if (!this.checkDeadline()) return;
    if (this.stream && this.streamStalled()) this.abandonStream();
    if (!this.stream) {
      this.openStream();
      return;
    }
    this.inFlight.push(this.now());
    this.stream.write({ ID: this.leaseId });
    this.armStallTimer();
  }

  /**
   * A stream whose member is paused, cut off or behind a dead leader stops answering without
   * breaking; waiting on it would cost the lease while other members could renew it.
   */
  private streamStalled(): boolean {
    return this.inFlight.length > 0 && this.clock.monotonic() - this.inFlight[0].mono >= this.stallBoundMs;
  }

  /** How long a keepalive may go unanswered before its stream counts as stalled. */
  private get stallBoundMs(): number {
    return this.renewEveryMs / 2;
  }

  /**
   * Checks the oldest unanswered keepalive when it becomes overdue, rather than at the next
   * renewal tick (half a renewal interval later), and moves to a fresh stream at once.
   */
  private armStallTimer(): void {
    if (this.stallTimer || this.inFlight.length === 0) return;
    const overdueInMs = this.inFlight[0].mono + this.stallBoundMs - this.clock.monotonic();
    this.stallTimer = setTimeout(
      () => {
        this.stallTimer = undefined;
        if (this.ended || !this.stream) return;
        if (this.streamStalled()) {
          this.abandonStream();
          this.renew();
        } else {
          this.armStallTimer();
        }
      },
      Math.max(0, overdueInMs),
    );
  }

  /** Drops a stalled stream; the next one goes to a member etcd3 picks at random. */
  private abandonStream(): void {
    const stalled = this.stream as (KeepAliveStream & { cancel?: () => void }) | undefined;
    this.stream = undefined;
    this.inFlight = [];
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    this.options.logger.debug?.(`keepalive stream for lease ${this.leaseHex} stopped answering; opening another`);
    stalled?.cancel?.();
    stalled?.end();
  }

  private openStream(): void {
    if (this.opening || this.ended) return;
    this.opening = true;
    this.client.leaseClient
      .leaseKeepAlive()
      .then(stream => {
        this.opening = false;
        if (this.ended) {
          stream.end();
          return;
        }
        this.stream = stream;
        this.inFlight = [];
        // An answer on a stream we abandoned belongs to a keepalive of that stream, not to one in
        // this.inFlight: counting it would date the renewal from a later send than the real one.
        stream.on('data', res => {
          if (stream === this.stream) this.onKeepAliveAnswer(res);
        });
        stream.on('error', err => this.onStreamBroken(stream, err));
        stream.on('end', () => this.onStreamBroken(stream, new Error('keepalive stream ended')));
        this.renew();
      })
      .catch(err => {
        this.opening = false;
        this.onStreamBroken(undefined, err);
      });
  }

  private onKeepAliveAnswer(res: ILeaseKeepAliveResponse): void {
    const sentAt = this.inFlight.shift();
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    if (!this.checkDeadline() || sentAt === undefined) return;
    this.armStallTimer();
    const ttl = Number(res.TTL);
    if (ttl <= 0) {
      this.lose('etcd reports that the lease has expired', undefined, { leaseGone: true });
      return;
    }
    this.lastRenewal = sentAt;
    this.deadline = this.deadlineAfter(sentAt, ttl);
    this.armLossTimer();
    for (const listener of this.renewalListeners) listener();
  }

  private onStreamBroken(stream: KeepAliveStream | undefined, err: unknown): void {
    if (stream && stream !== this.stream) return;
    this.stream = undefined;
    this.inFlight = [];
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    if (this.ended) return;
    this.options.logger.debug?.(`keepalive stream for lease ${this.leaseHex} broke: ${String(err)}`);
    // Retry soon rather than at the next regular renewal: the deadline keeps running meanwhile.
    this.scheduleRenewal(Math.min(100, this.renewEveryMs));
  }
}
