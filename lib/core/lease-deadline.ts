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

export const systemClock: SessionClock = { monotonic: () => performance.now(), wall: () => Date.now() };

/** One instant, read on both clocks. */
export interface Instant {
  mono: number;
  wall: number;
}

export function instantOn(clock: SessionClock): Instant {
  return { mono: clock.monotonic(), wall: clock.wall() };
}

/** 10 % of the TTL, kept within 0.1–1 s. */
export function defaultLossMarginMs(ttlSeconds: number): number {
  return Math.min(1000, Math.max(100, ttlSeconds * 100));
}

/**
 * A lease's deadline as this process can know it: the send time of the last acknowledged
 * keepalive (or of the grant) + the TTL etcd answered with − a margin. etcd received that request
 * after we sent it, so it cannot expire the lease before that instant.
 */
export class LeaseDeadline {
  /** Send time of the last acknowledged keepalive (or of the grant). */
  private lastRenewal: Instant;
  /** Loss is declared at this instant, on whichever clock reaches it first. */
  private deadline: Instant;

  constructor(
    private readonly clock: SessionClock,
    /** The TTL etcd granted, in seconds. */
    private readonly grantedTtl: number,
    readonly marginMs: number,
    grantSentAt: Instant,
  ) {
    this.lastRenewal = grantSentAt;
    this.deadline = this.after(grantSentAt, grantedTtl);
  }

  /** A keepalive sent at `sentAt` was acknowledged with `ttl` seconds. */
  renewed(sentAt: Instant, ttl: number): void {
    this.lastRenewal = sentAt;
    this.deadline = this.after(sentAt, ttl);
  }

  /** Time left before the deadline, by whichever clock is further along. */
  msLeft(): number {
    return Math.min(this.deadline.mono - this.clock.monotonic(), this.deadline.wall - this.clock.wall());
  }

  /** Time since the send of the last acknowledged keepalive, on the monotonic clock. */
  msSinceRenewal(): number {
    return this.clock.monotonic() - this.lastRenewal.mono;
  }

  /** Time until etcd itself could expire the lease: the granted TTL after the last acknowledged send. */
  msToEarliestServerExpiry(): number {
    return this.lastRenewal.mono + this.grantedTtl * 1000 - this.clock.monotonic();
  }

  /** The deadline `ttl` seconds after a keepalive (or the grant) sent at `sentAt`, less the margin. */
  private after(sentAt: Instant, ttl: number): Instant {
    const lifetime = ttl * 1000 - this.marginMs;
    return { mono: sentAt.mono + lifetime, wall: sentAt.wall + lifetime };
  }
}
