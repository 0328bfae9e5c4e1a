import os from 'node:os';
import type { Etcd3, IKeyValue } from 'etcd3';
import { EncodedTxns } from './wire/pooled-txn.js';
import type { KeysRange, WireKey } from './wire/txn-codec.js';
import { prefixRangeEnd } from './keys.js';
import type { LockQueueEntry, QueueEntryValue } from './lock-inspection.js';

/** Who queues, written into each key for inspection. */
const OWNER = `${os.hostname()}:${process.pid}`;

/** What one read of a resource's queue tells a waiter. */
export interface QueueView {
  /** The store revision this view was read at. */
  revision: string;
  /** Our own key, if it still exists with the create revision we were given. */
  ownExists: boolean;
  /** The waiter right ahead of us (highest create revision below ours), if any. */
  predecessor: WireKey | undefined;
}

/** The outcome of putting our key into a resource's queue. */
export type Enqueued =
  | { kind: 'queued'; createRevision: string; predecessor: WireKey | undefined; revision: string }
  /** A retried put found our key already there (the first attempt committed). */
  | { kind: 'retried'; createRevision: string }
  /** Try-only: the lock was held, and no key was written. */
  | { kind: 'busy' };

/**
 * The etcd requests of the fair mutex, each one round trip. Every write is safe to repeat,
 * because etcd3 retries calls that may already have committed.
 */
export class QueueStore {
  private readonly txns: EncodedTxns;

  constructor(
    private readonly client: Etcd3,
    readonly requestTimeoutMs: number,
  ) {
    this.txns = new EncodedTxns(client);
  }

  /**
   * Puts our key (bound to the lease) if it does not exist yet, and in the same transaction reads
   * the two newest keys of the queue: ours and the one ahead of it. Uncontended, that single
   * round trip is the whole acquisition.
   *
   * Try-only puts the key only if the queue is empty (a compare over the whole prefix), so a
   * busy lock costs no write and leaves nothing behind.
   */
  async enqueue(prefix: string, key: string, leaseId: string, tryOnly: boolean): Promise<Enqueued> {
    const keyBuf = Buffer.from(key);
    const newest = newestKeys(prefix, 2);
    const res = await this.txns.txn(
      {
        compare: [tryOnly ? { key: newest.key, rangeEnd: newest.rangeEnd, createRevision: '0' } : { key: keyBuf, createRevision: '0' }],
        success: [{ put: { key: keyBuf, value: entryValue(), lease: leaseId } }, { range: newest }],
        failure: [{ range: { key: keyBuf } }],
      },
      this.callOptions(),
    );
    if (!res.succeeded) {
      const own = res.ranges[0][0];
      return own ? { kind: 'retried', createRevision: own.createRevision } : { kind: 'busy' };
    }
    const [own, predecessor] = res.ranges[1];
    // A put inside a transaction takes the transaction's revision as its create revision.
    const createRevision = own && own.key.equals(keyBuf) ? own.createRevision : res.revision;
    return { kind: 'queued', createRevision, predecessor, revision: res.revision };
  }

  /** Reads the waiter ahead of us by create revision (not by name), and checks our own key. */
  async view(prefix: string, key: string, createRevision: string): Promise<QueueView> {
    const res = await this.txns.txn(
      {
        compare: [],
        success: [
          { range: { ...newestKeys(prefix, 1), maxCreateRevision: (BigInt(createRevision) - 1n).toString() } },
          { range: { key: Buffer.from(key) } },
        ],
      },
      this.callOptions(),
    );
    const own = res.ranges[1][0];
    return {
      revision: res.revision,
      ownExists: own !== undefined && own.createRevision === createRevision,
      predecessor: res.ranges[0][0],
    };
  }

  /** Deletes our key only if it still has our create revision: never another holder's key. */
  async deleteOwn(key: string, createRevision: string): Promise<void> {
    const keyBuf = Buffer.from(key);
    await this.txns.txn({ compare: [{ key: keyBuf, createRevision }], success: [{ deleteKey: keyBuf }] }, this.callOptions());
  }

  /**
   * Deletes our key when we do not know whether it was created (the put's outcome is unknown).
   * Safe unguarded: the key name carries our lease id and a sequence number, so no one else
   * ever writes it.
   */
  async deleteUnique(key: string): Promise<void> {
    await this.client.kv.deleteRange({ key: Buffer.from(key) }, this.callOptions());
  }

  /**
   * Deletes those of `keys` that exist, each only with the create revision just read (two round
   * trips for any number of keys); resolves with the keys deleted.
   */
  async deleteExisting(keys: string[]): Promise<string[]> {
    const read = await this.txns.txn({ compare: [], success: keys.map(key => ({ range: { key: Buffer.from(key) } })) }, this.callOptions());
    const found = read.ranges.flatMap(range => range.slice(0, 1));
    await Promise.all(found.map(kv => this.deleteOwn(kv.key.toString(), kv.createRevision)));
    return found.map(kv => kv.key.toString());
  }

  /** All keys of a resource's queue, holder first. */
  async queue(prefix: string): Promise<LockQueueEntry[]> {
    const res = await this.client.kv.range(
      { key: Buffer.from(prefix), range_end: prefixRangeEnd(prefix), sort_target: 'Create', sort_order: 'Ascend' },
      this.callOptions(),
    );
    return res.kvs.map(toQueueEntry);
  }

  private callOptions() {
    return { deadline: Date.now() + this.requestTimeoutMs };
  }
}

/** The `limit` keys of a resource's queue with the highest create revisions, newest first. */
function newestKeys(prefix: string, limit: number): KeysRange {
  return { key: Buffer.from(prefix), rangeEnd: prefixRangeEnd(prefix), newestFirst: true, limit };
}

function entryValue(): Buffer {
  const value: QueueEntryValue = { owner: OWNER, queuedAt: new Date().toISOString() };
  return Buffer.from(JSON.stringify(value));
}

function toQueueEntry(kv: IKeyValue): LockQueueEntry {
  const entry: LockQueueEntry = {
    key: kv.key.toString(),
    leaseId: BigInt(kv.lease).toString(16),
    fencingToken: BigInt(kv.create_revision),
  };
  try {
    // Keys put by etcdctl or Go's Mutex have empty values; ours say who queued and when.
    const value = JSON.parse(kv.value.toString()) as Partial<QueueEntryValue>;
    if (typeof value.owner === 'string') entry.owner = value.owner;
    if (typeof value.queuedAt === 'string') entry.queuedAt = new Date(value.queuedAt);
  } catch {
    // not one of ours
  }
  return entry;
}
