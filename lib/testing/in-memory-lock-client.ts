import {
  type AcquireOneOptions,
  LockBusyError,
  LockClient,
  LockClientClosedError,
  type LockClientOptions,
  LockHandle,
  type LockInspection,
  type LockQueueEntry,
  modeOfKey,
  modeSuffix,
  resolveLockOptions,
  resourcePrefix,
  type SessionStatus,
  splitQueue,
  turnOf,
  waiterKey,
  WaitScope,
} from '../core/index.js';
import { InMemoryLease } from './in-memory-lease.js';

/** Options of the in-memory client: the lock semantics ones (no etcd endpoint, auth or TLS). */
export type InMemoryLockClientOptions = Pick<LockClientOptions, 'prefix' | 'ttl' | 'waitTimeout' | 'logger'>;

interface QueueEntry {
  readonly resource: string;
  readonly key: string;
  readonly token: bigint;
  readonly lease: InMemoryLease;
  readonly queuedAt: Date;
  wake?: () => void;
}

/**
 * The lock client without etcd, for unit tests of code that uses locks: the same API and
 * semantics as {@link EtcdLockClient} (FIFO queues, shared locks and semaphores by the same rule,
 * try-only, wait timeouts, abort signals, rising fencing tokens, re-entrant `withLock` through
 * `LockService`), in one process. Tests can
 * make a lease or a single lock be lost with {@link loseLease} and {@link loseLock}.
 */
export class InMemoryLockClient extends LockClient {
  /** Like etcd's revision: every queued key takes the next one, so tokens only rise. */
  private revision = 0n;
  private sequence = 0;
  private leases = 0;
  private lease: InMemoryLease;
  private readonly queues = new Map<string, QueueEntry[]>();
  private readonly handles = new WeakMap<QueueEntry, LockHandle>();
  private closed = false;

  constructor(options: InMemoryLockClientOptions = {}) {
    super(resolveLockOptions(options));
    this.lease = this.newLease();
  }

  async connect(): Promise<void> {}

  status(): SessionStatus {
    if (this.closed) return { state: 'closed' };
    return { state: 'alive', leaseId: this.lease.leaseHex, grantedTtl: this.options.ttl, remainingMs: this.options.ttl * 1000 };
  }

  async ping(): Promise<number> {
    return 0;
  }

  async inspect(resource: string): Promise<LockInspection> {
    const prefix = resourcePrefix(this.options.prefix, resource);
    const { holders, waiters } = splitQueue(resource, prefix, (this.queues.get(resource) ?? []).map(toInspectionEntry));
    return { resource, holder: holders[0], holders, waiters };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.loseLease('the lock client was closed');
  }

  /** Test control: the lease is lost, as when etcd expires it. Held locks abort, waiters reject; later locks get a new lease. */
  loseLease(reason = 'the lease was lost (simulated by the test)'): void {
    const lost = this.lease;
    this.lease = this.newLease();
    lost.lose(reason);
    for (const queue of [...this.queues.values()]) queue.filter(e => e.lease === lost).forEach(e => this.remove(e));
  }

  /** Test control: the current (oldest) holder of `resource` loses it, as when its key is deleted. */
  loseLock(resource: string, reason = 'its key was deleted (simulated by the test)'): void {
    const holder = this.queues.get(resource)?.[0];
    if (!holder) throw new Error(`no one holds "${resource}"`);
    this.handles.get(holder)?.markLost(reason);
    this.remove(holder);
  }

  protected async acquireOne(resource: string, _ttl: number, options: AcquireOneOptions): Promise<LockHandle> {
    if (this.closed) throw new LockClientClosedError();
    const { mode } = options;
    const prefix = resourcePrefix(this.options.prefix, resource);
    const key = waiterKey(prefix, this.lease.leaseHex, ++this.sequence, modeSuffix(mode));
    const queue = this.queues.get(resource) ?? [];
    const turn = () => turnOf(resource, mode, prefix, queue.slice(0, queue.indexOf(entry)).map(toQueuedKey));
    // As on etcd: nothing is queued when the mode does not match, nor by a try-only call that would wait.
    const ahead = queue.map(toQueuedKey);
    if (!turnOf(resource, mode, prefix, ahead).enter && options.tryOnly) throw new LockBusyError(resource);
    const entry: QueueEntry = { resource, key, token: ++this.revision, lease: this.lease, queuedAt: new Date() };
    queue.push(entry);
    this.queues.set(resource, queue);
    const scope = new WaitScope(resource, options, entry.lease);
    try {
      if (!turn().enter) this.events.emit({ type: 'waiting', resource, key });
      while (!turn().enter) {
        await scope.race(new Promise<void>(resolve => (entry.wake = resolve)));
      }
      const handle = new LockHandle(resource, key, entry.token, entry.lease, async () => this.remove(entry), this.events, mode);
      this.handles.set(entry, handle);
      return handle;
    } catch (err) {
      this.remove(entry);
      throw scope.aborted ? scope.reason : err;
    } finally {
      scope.dispose();
    }
  }

  private remove(entry: QueueEntry): void {
    const queue = this.queues.get(entry.resource);
    const index = queue?.indexOf(entry) ?? -1;
    if (!queue || index < 0) return;
    queue.splice(index, 1);
    if (queue.length === 0) this.queues.delete(entry.resource);
    // Every waiter behind looks again (in one process a herd costs nothing).
    else for (const behind of queue.slice(index)) behind.wake?.();
  }

  private newLease(): InMemoryLease {
    return new InMemoryLease((0x1000 + ++this.leases).toString(16));
  }
}

function toInspectionEntry(entry: QueueEntry): LockQueueEntry {
  return {
    key: entry.key,
    leaseId: entry.lease.leaseHex,
    fencingToken: entry.token,
    owner: `${process.pid}`,
    queuedAt: entry.queuedAt,
    mode: modeOfKey(entry.key),
  };
}

function toQueuedKey(entry: QueueEntry): { key: string; createRevision: string } {
  return { key: entry.key, createRevision: entry.token.toString() };
}
