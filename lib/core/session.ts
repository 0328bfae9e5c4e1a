import {
  EtcdLeaseInvalidError,
  type Etcd3,
  type IDuplexStream,
  type ILeaseKeepAliveRequest,
  type ILeaseKeepAliveResponse,
} from 'etcd3';
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
 * the lease itself and keeps its own deadline on the monotonic clock: the send time of the last
 * acknowledged keepalive + the TTL it granted − a margin. The server cannot expire the lease
 * before that instant (it received the keepalive after we sent it), so when the deadline passes
 * we declare loss strictly before anyone else could be granted our locks.
 */
export class Session implements LockLease {
  readonly leaseHex: string;
  private deadline: number;
  private lastRenewal: number;
  private ended: SessionEnd | undefined;
  private readonly listeners = new Set<LossListener>();
  private readonly renewalListeners = new Set<() => void>();
  private readonly renewEveryMs: number;
  private readonly marginMs: number;
  private stream: KeepAliveStream | undefined;
  private opening = false;
  /** Send times of keepalives not yet answered; etcd answers a stream's requests in order. */
  private inFlight: number[] = [];
  private renewTimer: NodeJS.Timeout | undefined;
  private lossTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly client: Etcd3,
    /** The lease id, as etcd3 reports it (a decimal string). */
    readonly leaseId: string,
    /** The TTL etcd actually granted, in seconds. */
    readonly grantedTtl: number,
    grantSentAt: number,
    private readonly options: SessionOptions,
  ) {
    this.leaseHex = BigInt(leaseId).toString(16);
    this.renewEveryMs = (grantedTtl * 1000) / 3;
    this.marginMs = options.lossMarginMs ?? Math.min(1000, Math.max(100, grantedTtl * 100));
    this.lastRenewal = grantSentAt;
    this.deadline = grantSentAt + grantedTtl * 1000 - this.marginMs;
    this.armLossTimer();
    this.scheduleRenewal(this.renewEveryMs);
  }

  /** Grants a lease and starts renewing it. */
  static async open(client: Etcd3, options: SessionOptions, grantTimeoutMs = options.requestTimeoutMs): Promise<Session> {
    const sentAt = performance.now();
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
    return this.ended === undefined && performance.now() < this.deadline;
  }

  get end(): SessionEnd | undefined {
    return this.ended;
  }

  /** Milliseconds left before this session would declare itself lost without another renewal. */
  get remainingMs(): number {
    return this.ended ? 0 : Math.max(0, this.deadline - performance.now());
  }

  /** True while a renewal is overdue (etcd slow or unreachable): the lease still holds, for now. */
  get renewalOverdue(): boolean {
    return performance.now() - this.lastRenewal > this.renewEveryMs * 1.5;
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

  /** Declares the session lost: listeners fire now, then the lease is revoked best-effort. */
  lose(reason: string, cause?: unknown): void {
    if (!this.finish({ reason, cause })) return;
    this.options.logger.warn(`etcd lease ${this.leaseHex} lost: ${reason}`);
    // The server may still hold the lease (our deadline is conservative): free our keys now.
    void this.revoke().catch(() => undefined);
  }

  /** Ends the session and revokes the lease, deleting every key bound to it. */
  async close(): Promise<void> {
    if (this.finish({ reason: 'the lock client was closed' })) await this.revoke();
  }

  private async revoke(): Promise<void> {
    try {
      await this.client.leaseClient.leaseRevoke(
        { ID: this.leaseId },
        { deadline: Date.now() + this.options.requestTimeoutMs },
      );
    } catch (err) {
      if (!(err instanceof EtcdLeaseInvalidError)) throw toLockError(err, 'revoking the lease');
    }
  }

  private finish(end: SessionEnd): boolean {
    if (this.ended) return false;
    this.ended = end;
    clearTimeout(this.renewTimer);
    clearTimeout(this.lossTimer);
    this.stream?.end();
    this.stream = undefined;
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
    this.lossTimer = setTimeout(() => {
      if (this.checkDeadline()) this.armLossTimer();
    }, Math.max(0, this.deadline - performance.now()));
  }

  private checkDeadline(): boolean {
    if (this.ended) return false;
    if (performance.now() >= this.deadline) {
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
    this.inFlight.push(performance.now());
    this.stream.write({ ID: this.leaseId });
  }

  /**
   * A stream whose member is paused, cut off or behind a dead leader stops answering without
   * breaking; waiting on it would cost the lease while other members could renew it.
   */
  private streamStalled(): boolean {
    return this.inFlight.length > 0 && performance.now() - this.inFlight[0] > this.renewEveryMs / 2;
  }

  /** Drops a stalled stream; the next one goes to a member etcd3 picks at random. */
  private abandonStream(): void {
    const stalled = this.stream as (KeepAliveStream & { cancel?: () => void }) | undefined;
    this.stream = undefined;
    this.inFlight = [];
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
        stream.on('data', res => this.onKeepAliveAnswer(res));
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
    if (!this.checkDeadline() || sentAt === undefined) return;
    const ttl = Number(res.TTL);
    if (ttl <= 0) {
      this.lose('etcd reports that the lease has expired');
      return;
    }
    this.lastRenewal = sentAt;
    this.deadline = sentAt + ttl * 1000 - this.marginMs;
    this.armLossTimer();
    for (const listener of this.renewalListeners) listener();
  }

  private onStreamBroken(stream: KeepAliveStream | undefined, err: unknown): void {
    if (stream && stream !== this.stream) return;
    this.stream = undefined;
    this.inFlight = [];
    if (this.ended) return;
    this.options.logger.debug?.(`keepalive stream for lease ${this.leaseHex} broke: ${String(err)}`);
    // Retry soon rather than at the next regular renewal: the deadline keeps running meanwhile.
    this.scheduleRenewal(Math.min(100, this.renewEveryMs));
  }
}
