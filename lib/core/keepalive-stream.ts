import type { Etcd3, IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';
import { instantOn, type Instant, type SessionClock } from './lease-deadline.js';
import type { LockLogger } from './logger.js';

type EtcdKeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

/** The session a keepalive stream renews, as the stream sees it. */
export interface KeepAliveOwner {
  /** Declares the loss when the deadline has passed; false once the session has ended. */
  checkDeadline(): boolean;
  /** etcd answered the keepalive sent at `sentAt` with a TTL of `ttl` seconds (0: the lease is gone). */
  answered(sentAt: Instant, ttl: number): void;
  /** The stream broke or could not be opened: renew again soon, on a fresh one. */
  broken(): void;
}

export interface KeepAliveStreamOptions {
  leaseId: string;
  leaseHex: string;
  /** How long a keepalive may go unanswered before its stream counts as stalled. */
  stallBoundMs: number;
  clock: SessionClock;
  logger: LockLogger;
}

/**
 * The keepalive stream of one lease, with the send time of every keepalive not yet answered
 * (etcd answers a stream's requests in order), so a renewal is dated from its send. A stream
 * whose member is paused, cut off or behind a dead leader stops answering without breaking;
 * waiting on it would cost the lease while other members could renew it, so it is dropped as
 * soon as its oldest keepalive is overdue.
 */
export class KeepAliveStream {
  private stream: EtcdKeepAliveStream | undefined;
  private opening = false;
  private closed = false;
  /** Send times of keepalives not yet answered. */
  private inFlight: Instant[] = [];
  private stallTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: Etcd3,
    private readonly owner: KeepAliveOwner,
    private readonly options: KeepAliveStreamOptions,
  ) {}

  /** Sends a keepalive, on a fresh stream if there is none or the current one stalled. */
  renew(): void {
    if (!this.owner.checkDeadline()) return;
    if (this.stream && this.stalled()) this.abandon();
    if (!this.stream) {
      this.open();
      return;
    }
    this.inFlight.push(instantOn(this.options.clock));
    this.stream.write({ ID: this.options.leaseId });
    this.armStallTimer();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.stallTimer);
    this.stream?.end();
    this.stream = undefined;
  }

  private stalled(): boolean {
    return this.inFlight.length > 0 && this.options.clock.monotonic() - this.inFlight[0].mono >= this.options.stallBoundMs;
  }

  /**
   * Checks the oldest unanswered keepalive when it becomes overdue, rather than at the next
   * renewal tick (half a renewal interval later), and moves to a fresh stream at once.
   */
  private armStallTimer(): void {
    if (this.stallTimer || this.inFlight.length === 0) return;
    const overdueInMs = this.inFlight[0].mono + this.options.stallBoundMs - this.options.clock.monotonic();
    this.stallTimer = setTimeout(
      () => {
        this.stallTimer = undefined;
        if (this.closed || !this.stream) return;
        if (this.stalled()) {
          this.abandon();
          this.renew();
        } else {
          this.armStallTimer();
        }
      },
      Math.max(0, overdueInMs),
    );
  }

  /** Drops a stalled stream; the next one goes to a member etcd3 picks at random. */
  private abandon(): void {
    const stalled = this.stream as (EtcdKeepAliveStream & { cancel?: () => void }) | undefined;
    this.stream = undefined;
    this.inFlight = [];
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    this.options.logger.debug?.(`keepalive stream for lease ${this.options.leaseHex} stopped answering; opening another`);
    stalled?.cancel?.();
    stalled?.end();
  }

  private open(): void {
    if (this.opening || this.closed) return;
    this.opening = true;
    this.client.leaseClient
      .leaseKeepAlive()
      .then(stream => {
        this.opening = false;
        if (this.closed) {
          stream.end();
          return;
        }
        this.stream = stream;
        this.inFlight = [];
        // An answer on a stream we abandoned belongs to a keepalive of that stream, not to one in
        // this.inFlight: counting it would date the renewal from a later send than the real one.
        stream.on('data', res => {
          if (stream === this.stream) this.onAnswer(res);
        });
        stream.on('error', err => this.onBroken(stream, err));
        stream.on('end', () => this.onBroken(stream, new Error('keepalive stream ended')));
        this.renew();
      })
      .catch(err => {
        this.opening = false;
        this.onBroken(undefined, err);
      });
  }

  private onAnswer(res: ILeaseKeepAliveResponse): void {
    const sentAt = this.inFlight.shift();
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    if (!this.owner.checkDeadline() || sentAt === undefined) return;
    this.armStallTimer();
    this.owner.answered(sentAt, Number(res.TTL));
  }

  private onBroken(stream: EtcdKeepAliveStream | undefined, err: unknown): void {
    if (stream && stream !== this.stream) return;
    this.stream = undefined;
    this.inFlight = [];
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    if (this.closed) return;
    this.options.logger.debug?.(`keepalive stream for lease ${this.options.leaseHex} broke: ${String(err)}`);
    this.owner.broken();
  }
}
