import {
  Elections,
  LockEvents,
  LockLostError,
  WaitScope,
  silentLogger,
  type AcquireOneOptions,
  type Candidacy,
  type LeaderInfo,
  type LockLogger,
} from '../core/index.js';
import { InMemoryLease } from './in-memory-lease.js';

interface Candidate {
  readonly keyPrefix: string;
  readonly key: string;
  value: string;
  readonly token: bigint;
  readonly lease: InMemoryLease;
  wake?: () => void;
  gone?: (reason: string) => void;
}

/**
 * What several in-memory "instances" share, as they would share etcd: the candidates of every
 * election and the revision counter. Give one ledger to the {@link InMemoryElections} of each test
 * application to elect one leader among them.
 */
export class InMemoryElectionLedger {
  private readonly elections = new Map<string, Candidate[]>();
  private readonly watchers = new Map<string, Set<() => void>>();
  private revision = 0n;
  private leases = 0;

  /** @internal */
  newLease(): InMemoryLease {
    return new InMemoryLease((0x9000 + ++this.leases).toString(16));
  }

  /** @internal Queues a candidate, as a put takes the next revision. */
  add(keyPrefix: string, key: string, value: string, lease: InMemoryLease): Candidate {
    const candidate: Candidate = { keyPrefix, key, value, token: ++this.revision, lease };
    const queue = this.elections.get(keyPrefix) ?? [];
    queue.push(candidate);
    this.elections.set(keyPrefix, queue);
    this.changed(keyPrefix);
    return candidate;
  }

  /** @internal */
  queue(keyPrefix: string): readonly Candidate[] {
    return this.elections.get(keyPrefix) ?? [];
  }

  /** @internal Deletes a candidate key (guarded by identity, as etcd's by create revision); wakes the next. */
  remove(candidate: Candidate): void {
    const queue = this.elections.get(candidate.keyPrefix);
    const index = queue?.indexOf(candidate) ?? -1;
    if (!queue || index < 0) return;
    queue.splice(index, 1);
    if (queue.length === 0) this.elections.delete(candidate.keyPrefix);
    else if (index === 0) queue[0].wake?.();
    candidate.wake?.();
    this.changed(candidate.keyPrefix);
  }

  /** @internal A lease ended: its keys go with it, as etcd deletes a lease's keys. */
  dropLease(lease: InMemoryLease): void {
    for (const queue of [...this.elections.values()]) for (const c of queue.filter(c => c.lease === lease)) this.remove(c);
  }

  /** @internal */
  changed(keyPrefix: string): void {
    for (const watcher of this.watchers.get(keyPrefix) ?? []) queueMicrotask(watcher);
  }

  /** @internal */
  watch(keyPrefix: string, onChange: () => void): () => void {
    const set = this.watchers.get(keyPrefix) ?? new Set();
    set.add(onChange);
    this.watchers.set(keyPrefix, set);
    return () => set.delete(onChange);
  }
}

/**
 * Elections without etcd, for tests of applications with `ElectionService` or `@LeaderOnly`:
 * the same FIFO order, fencing tokens, one candidacy per name and loss rules as on etcd, in
 * memory. {@link loseLeadership} and {@link loseLease} make this instance lose, as when its key
 * is deleted or etcd expires its lease.
 */
export class InMemoryElections extends Elections {
  private lease: InMemoryLease;

  constructor(
    /** The shared state of the elections: give one ledger to several instances to elect among them. */
    readonly ledger = new InMemoryElectionLedger(),
    options: { prefix?: string; events?: LockEvents; logger?: LockLogger } = {},
  ) {
    const logger = options.logger ?? silentLogger;
    super(options.prefix ?? 'elections/', options.events ?? new LockEvents(logger), logger);
    this.lease = ledger.newLease();
  }

  /**
   * Test control: this instance loses the leadership of election `name`, as when its leader key
   * is deleted; the next candidate leads. Throws when this instance does not lead it.
   */
  loseLeadership(name = 'default', reason = 'the leader key was deleted (simulated by the test)'): void {
    const [head] = this.ledger.queue(this.keyPrefix(name));
    if (!head || head.lease !== this.lease) throw new Error(`this instance does not lead election "${name}"`);
    this.ledger.remove(head);
    head.gone?.(reason);
  }

  /** Test control: this instance's lease is lost; leaderships abort, waiting campaigns reject, later ones use a new lease. */
  loseLease(reason = 'the lease was lost (simulated by the test)'): void {
    const lost = this.lease;
    this.lease = this.ledger.newLease();
    lost.lose(reason);
    this.ledger.dropLease(lost);
  }

  protected async enter(resource: string, keyPrefix: string, value: string, options: AcquireOneOptions): Promise<Candidacy> {
    const lease = this.lease;
    const candidate = this.ledger.add(keyPrefix, `${keyPrefix}${lease.leaseHex}`, value, lease);
    const scope = new WaitScope(resource, options, lease);
    let announced = false;
    try {
      for (;;) {
        const queue = this.ledger.queue(keyPrefix);
        if (!queue.includes(candidate)) throw new LockLostError(resource, 'our candidate key vanished while waiting');
        if (queue[0] === candidate) break;
        if (!announced) this.events.emit({ type: 'waiting', resource, key: candidate.key });
        announced = true;
        await scope.race(new Promise<void>(resolve => (candidate.wake = resolve)));
      }
      candidate.wake = undefined;
      return {
        key: candidate.key,
        fencingToken: candidate.token,
        lease,
        remove: async () => this.ledger.remove(candidate),
        proclaim: async next => {
          if (!this.ledger.queue(keyPrefix).includes(candidate)) return false;
          candidate.value = next;
          this.ledger.changed(keyPrefix);
          return true;
        },
        watchGone: onGone => {
          candidate.gone = onGone;
          return () => (candidate.gone = undefined);
        },
      };
    } catch (err) {
      this.ledger.remove(candidate);
      throw scope.aborted ? scope.reason : err;
    } finally {
      scope.dispose();
    }
  }

  protected async readLeader(keyPrefix: string): Promise<LeaderInfo | undefined> {
    const [head] = this.ledger.queue(keyPrefix);
    return head && { key: head.key, value: head.value, leaseId: head.lease.leaseHex, fencingToken: head.token };
  }

  protected watchPrefix(keyPrefix: string, onChange: () => void): () => void {
    return this.ledger.watch(keyPrefix, onChange);
  }
}
