import type { Etcd3 } from 'etcd3';
import type { LockHandle } from './handle.js';
import { isWaiterKeyOfLease } from './keys.js';
import type { LockLogger } from './logger.js';
import type { QueueStore } from './queue-store.js';
import type { Session } from './session.js';

/**
 * Reconciles the keys on a session's lease with what this client knows it owns, after each lease
 * renewal, with one `LeaseTimeToLive` call (keys included):
 * - a held lock whose key is missing was deleted behind our back (`etcdctl del`, an operator's
 *   clean-up): the lock is lost;
 * - a key of ours that neither a held lock nor an acquisition in progress owns is an orphan: a
 *   put whose outcome was unknown (timed out, retried by etcd3) landed after its acquisition gave
 *   up and after the cleanup delete went by. Left alone it would hold or block the resource until
 *   the lease ends, so it is deleted (guarded by its create revision). The key names carry our
 *   lease id and a per-acquisition sequence, so no one else ever writes them.
 *
 * Cost: at most one request per renewal for all locks, and none while nothing could be wrong: it
 * runs only while locks are held, or for one TTL after an acquisition ended without its lock (the
 * only way an orphan appears). A put landing later than that, with no lock held meanwhile, is
 * found at the next audit after one is held.
 */
export class LeaseKeysAudit {
  /** Held locks by key. */
  private readonly held = new Map<string, LockHandle>();
  /** Keys of acquisitions in progress (chosen, not yet granted or given up). */
  private readonly acquiring = new Set<string>();
  /** monotonic ms until which an orphan may still appear. */
  private suspectUntil = -Infinity;
  private running = false;

  constructor(
    private readonly client: Etcd3,
    private readonly session: Session,
    private readonly store: QueueStore,
    /** The client's key prefix: only keys under it are ours to delete. */
    private readonly keyPrefix: string,
    private readonly logger: LockLogger,
  ) {
    session.onRenewed(() => void this.run());
  }

  add(handle: LockHandle): void {
    this.held.set(handle.key, handle);
  }

  delete(handle: LockHandle): void {
    this.held.delete(handle.key);
  }

  /**
   * Registers the key of an acquisition before its put is sent; call the returned function when
   * the acquisition ends (after its handle, if any, was added).
   */
  begin(key: string): () => void {
    this.acquiring.add(key);
    return () => {
      this.acquiring.delete(key);
      if (!this.held.has(key)) {
        this.suspectUntil = performance.now() + this.session.grantedTtl * 1000;
      }
    };
  }

  private get due(): boolean {
    return this.held.size > 0 || performance.now() < this.suspectUntil;
  }

  private async run(): Promise<void> {
    if (this.running || !this.due) return;
    this.running = true;
    // Only locks held before the request went out: their keys predate the answer.
    const audited = [...this.held.values()];
    try {
      const res = await this.client.leaseClient.leaseTimeToLive(
        { ID: this.session.leaseId, keys: true },
        { deadline: Date.now() + this.store.requestTimeoutMs },
      );
      if (Number(res.TTL) <= 0) {
        this.session.lose('etcd reports that the lease has expired', undefined, { leaseGone: true });
        return;
      }
      const onLease = new Set(res.keys.map(key => key.toString()));
      for (const handle of audited) {
        if (this.held.get(handle.key) === handle && !onLease.has(handle.key)) handle.markLost('its key was deleted from etcd');
      }
      await this.deleteOrphans(onLease);
    } catch (err) {
      // Renewal, not this audit, decides whether the lease is alive; the next renewal audits again.
      this.logger.debug?.(`auditing the keys of lease ${this.session.leaseHex} failed: ${String(err)}`);
    } finally {
      this.running = false;
    }
  }

  /**
   * Every key on the lease was put by an acquisition registered before its put went out, so a
   * key that is neither held nor being acquired NOW belongs to one that has ended.
   */
  private async deleteOrphans(onLease: Set<string>): Promise<void> {
    const orphans = [...onLease].filter(
      key =>
        key.startsWith(this.keyPrefix) && isWaiterKeyOfLease(key, this.session.leaseHex) && !this.held.has(key) && !this.acquiring.has(key),
    );
    if (orphans.length === 0) return;
    const deleted = await this.store.deleteExisting(orphans);
    if (deleted.length > 0) {
      this.logger.debug?.(`deleted ${deleted.length} orphaned lock key(s) of lease ${this.session.leaseHex}: ${deleted.join(', ')}`);
    }
  }
}
