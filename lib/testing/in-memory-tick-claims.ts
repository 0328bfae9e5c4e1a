import { type ClaimedKey, type ClaimLease, LockEvents, type LockLogger, type PutAnswer, silentLogger, TickClaims } from '../core/index.js';
import { InMemoryLease } from './in-memory-lease.js';

interface StoredKey extends ClaimedKey {
  lease: ClaimLease;
}

/**
 * What several in-memory "instances" share, as they would share etcd: the tick keys and the
 * revision counter. Give one ledger to the {@link InMemoryTickClaims} of each test application to
 * see ticks run once across them.
 */
export class InMemoryTickLedger {
  /** @internal */ readonly keys = new Map<string, StoredKey>();
  /** @internal */ revision = 0n;
  private leases = 0;

  /** @internal */
  newLease(): InMemoryLease & ClaimLease {
    const hex = (0x7000 + ++this.leases).toString(16);
    return Object.assign(new InMemoryLease(hex), { leaseId: BigInt(`0x${hex}`).toString() });
  }

  /** @internal A lease ended: its keys go with it, as etcd deletes a lease's keys. */
  dropLease(lease: ClaimLease): void {
    for (const [key, stored] of this.keys) if (stored.lease === lease) this.keys.delete(key);
  }

  /** The tick keys present now (for assertions). */
  keyNames(): string[] {
    return [...this.keys.keys()];
  }
}

/**
 * Tick claims without etcd, for tests of applications with `@OncePerTick` jobs: the same claim,
 * hold and overlap rules as on etcd, in memory. {@link loseLease} makes a running tick's lock be
 * lost, as when etcd expires the lease.
 */
export class InMemoryTickClaims extends TickClaims {
  private current: (InMemoryLease & ClaimLease) | undefined;

  constructor(
    readonly ledger = new InMemoryTickLedger(),
    options: { prefix?: string; events?: LockEvents; logger?: LockLogger } = {},
  ) {
    const logger = options.logger ?? silentLogger;
    super(options.prefix ?? 'ticks/', options.events ?? new LockEvents(logger), logger);
  }

  /** Test control: this instance's lease is lost; running ticks' locks abort and their keys go. */
  loseLease(reason = 'the lease was lost (simulated by the test)'): void {
    const lost = this.current;
    this.current = undefined;
    if (!lost) return;
    lost.lose(reason);
    this.ledger.dropLease(lost);
  }

  protected async lease(): Promise<ClaimLease> {
    this.current ??= this.ledger.newLease();
    return this.current;
  }

  protected async putIfAbsent(keys: { tick: string; running?: string }, value: string, lease: ClaimLease): Promise<PutAnswer> {
    const names = [keys.tick, ...(keys.running ? [keys.running] : [])];
    if (names.some(name => this.ledger.keys.has(name))) {
      return {
        created: false,
        tick: this.ledger.keys.get(keys.tick),
        running: keys.running ? this.ledger.keys.get(keys.running) : undefined,
      };
    }
    const revision = ++this.ledger.revision;
    for (const name of names) this.ledger.keys.set(name, { value, createRevision: revision, lease });
    return { created: true, revision };
  }

  protected async read(key: string): Promise<ClaimedKey | undefined> {
    return this.ledger.keys.get(key);
  }

  protected async deleteIfCreatedAt(key: string, createRevision: bigint): Promise<void> {
    if (this.ledger.keys.get(key)?.createRevision === createRevision) this.ledger.keys.delete(key);
  }

  protected async closeBackend(): Promise<void> {
    this.loseLease('the tick claims were closed');
  }
}
