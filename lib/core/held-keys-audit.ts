import type { Etcd3 } from 'etcd3';
import type { LockHandle } from './handle.js';
import type { LockLogger } from './logger.js';
import type { Session } from './session.js';

/**
 * Notices held locks whose key was deleted behind our back (`etcdctl del`, an operator's
 * clean-up): after each lease renewal, while locks are held, one `LeaseTimeToLive` call lists the
 * keys still on the lease, and every held lock missing from it is lost. One request per renewal
 * for all locks, instead of one watch per lock.
 */
export class HeldKeysAudit {
  private readonly held = new Set<LockHandle>();
  private running = false;

  constructor(
    private readonly client: Etcd3,
    private readonly session: Session,
    private readonly requestTimeoutMs: number,
    private readonly logger: LockLogger,
  ) {
    session.onRenewed(() => void this.run());
  }

  add(handle: LockHandle): void {
    this.held.add(handle);
  }

  delete(handle: LockHandle): void {
    this.held.delete(handle);
  }

  private async run(): Promise<void> {
    if (this.running || this.held.size === 0) return;
    this.running = true;
    // Only locks held before the request went out: their keys predate the answer.
    const audited = [...this.held];
    try {
      const res = await this.client.leaseClient.leaseTimeToLive(
        { ID: this.session.leaseId, keys: true },
        { deadline: Date.now() + this.requestTimeoutMs },
      );
      if (Number(res.TTL) <= 0) {
        this.session.lose('etcd reports that the lease has expired');
        return;
      }
      const onLease = new Set(res.keys.map(key => key.toString()));
      for (const handle of audited) {
        if (this.held.has(handle) && !onLease.has(handle.key)) handle.markLost('its key was deleted from etcd');
      }
    } catch (err) {
      // Renewal, not this audit, decides whether the lease is alive.
      this.logger.debug?.(`auditing the keys of lease ${this.session.leaseHex} failed: ${String(err)}`);
    } finally {
      this.running = false;
    }
  }
}
