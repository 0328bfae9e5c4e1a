import os from 'node:os';
import type { Etcd3, IKeyValue } from 'etcd3';
import { EncodedTxns } from './wire/pooled-txn.js';
import type { CreateRevisionIs, KeysRange, WireKey, WireOp } from './wire/txn-codec.js';
import { prefixRangeEnd } from './keys.js';
import { modeOfKey } from './lock-mode.js';
import { mergeAhead, type AheadReads } from './queue-turn.js';
import type { LockQueueEntry, QueueEntryValue } from './lock-inspection.js';

/** Who queues, written into each key for inspection. */
const OWNER = `${os.hostname()}:${process.pid}`;

/** What one read of a resource's queue tells a waiter. */
export interface QueueView {
  /** The store revision this view was read at. */
  revision: string;
  /** Our own key, if it still exists with the create revision we were given. */
  ownExists: boolean;
  /**
   * Keys ahead of ours (lower create revision), oldest first: those the mode's
   * {@link AheadReads} asked for, the newest last (for the mutex, just the one right ahead).
   */
  ahead: WireKey[];
}

/**
 * What the put that queues us requires: that our key be `absent` (always, so a retried put that
 * committed is recognised); also that the whole queue be `empty` (try-only mutex: a busy lock
 * costs no write), or that its oldest key still be `oldest` (a semaphore agrees with it on N).
 */
export type EnqueueGuard = 'absent' | 'empty' | { oldest: WireKey };

/** The outcome of putting our key into a resource's queue. */
export type Enqueued =
  | { kind: 'queued'; createRevision: string; ahead: WireKey[]; revision: string }
  /** A retried put found our key already there (the first attempt committed). */
  | { kind: 'retried'; createRevision: string }
  /** The guard failed and no key was written; `oldest` is the queue's oldest key now, if asked for. */
  | { kind: 'refused'; oldest: WireKey | undefined };

/**
 * The etcd requests of the fair queue, each one round trip. Every write is safe to repeat,
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
   * Puts our key (bound to the lease) if `guard` holds, and in the same transaction reads the
   * keys ahead that `reads` asks for (for the mutex: the newest two keys, ours and the one ahead
   * of it). Uncontended, that single round trip is the whole acquisition.
   */
  async enqueue(prefix: string, key: string, value: Buffer, leaseId: string, guard: EnqueueGuard, reads: AheadReads): Promise<Enqueued> {
    const keyBuf = Buffer.from(key);
    const compare: CreateRevisionIs[] = [{ key: keyBuf, createRevision: '0' }];
    if (guard === 'empty') compare[0] = { ...prefixRange(prefix), createRevision: '0' };
    else if (guard !== 'absent') compare.push({ key: guard.oldest.key, createRevision: guard.oldest.createRevision });
    const failure: WireOp[] = [{ range: { key: keyBuf } }];
    if (typeof guard === 'object' || reads.oldest !== undefined)
      failure.push({ range: { ...prefixRange(prefix), oldestFirst: true, limit: 1 } });
    const res = await this.txns.txn(
      {
        compare,
        success: [{ put: { key: keyBuf, value, lease: leaseId } }, ...aheadRanges(prefix, reads, undefined)],
        failure,
      },
      this.callOptions(),
    );
    if (!res.succeeded) {
      const own = res.ranges[0][0];
      return own ? { kind: 'retried', createRevision: own.createRevision } : { kind: 'refused', oldest: res.ranges[1]?.[0] };
    }
    const read = res.ranges.slice(1).map(range => range.filter(kv => !kv.key.equals(keyBuf)));
    // A put inside a transaction takes the transaction's revision as its create revision.
    return { kind: 'queued', createRevision: res.revision, ahead: mergeReads(reads, read), revision: res.revision };
  }

  /** Reads the keys ahead of ours by create revision (not by name), and checks our own key. */
  async view(prefix: string, key: string, createRevision: string, reads: AheadReads): Promise<QueueView> {
    const below = (BigInt(createRevision) - 1n).toString();
    const ranges = aheadRanges(prefix, reads, below);
    const res = await this.txns.txn({ compare: [], success: [...ranges, { range: { key: Buffer.from(key) } }] }, this.callOptions());
    const own = res.ranges[ranges.length][0];
    return {
      revision: res.revision,
      ownExists: own !== undefined && own.createRevision === createRevision,
      ahead: mergeReads(reads, res.ranges.slice(0, ranges.length)),
    };
  }

  /**
   * Writes our key again, unchanged (same value, same lease, so the same create revision), only
   * if it still has our create revision: the put event wakes the waiter watching it. Resolves
   * false when the key is gone.
   */
  async rewriteOwn(key: string, createRevision: string, value: Buffer, leaseId: string): Promise<boolean> {
    const keyBuf = Buffer.from(key);
    const res = await this.txns.txn(
      { compare: [{ key: keyBuf, createRevision }], success: [{ put: { key: keyBuf, value, lease: leaseId } }] },
      this.callOptions(),
    );
    return res.succeeded;
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

function prefixRange(prefix: string): { key: Buffer; rangeEnd: Buffer } {
  return { key: Buffer.from(prefix), rangeEnd: prefixRangeEnd(prefix) };
}

/**
 * The range requests of `reads`, below `maxCreateRevision` (a view) or over the whole queue
 * (enqueue: our own key is then among them, one more per bounded range).
 */
function aheadRanges(prefix: string, reads: AheadReads, maxCreateRevision: string | undefined): WireOp[] {
  const extra = maxCreateRevision === undefined ? 1 : 0;
  const ranges: KeysRange[] = [];
  if (reads.oldest !== undefined) {
    const limit = reads.oldest === 'all' ? undefined : reads.oldest + extra;
    ranges.push({ ...prefixRange(prefix), oldestFirst: true, limit, maxCreateRevision });
  }
  if (reads.newest !== undefined)
    ranges.push({ ...prefixRange(prefix), newestFirst: true, limit: reads.newest + extra, maxCreateRevision });
  return ranges.map(range => ({ range }));
}

/** The keys ahead, oldest first, from the answers to {@link aheadRanges} (our own key left out). */
function mergeReads(reads: AheadReads, ranges: WireKey[][]): WireKey[] {
  const oldest = reads.oldest !== undefined ? ranges[0] : [];
  const newest = reads.newest !== undefined ? ranges[reads.oldest !== undefined ? 1 : 0] : [];
  return mergeAhead(oldest, newest);
}

/** What a waiter writes as its key's value, so inspection can say who and since when. */
export function entryValue(): Buffer {
  const value: QueueEntryValue = { owner: OWNER, queuedAt: new Date().toISOString() };
  return Buffer.from(JSON.stringify(value));
}

function toQueueEntry(kv: IKeyValue): LockQueueEntry {
  const entry: LockQueueEntry = {
    key: kv.key.toString(),
    leaseId: BigInt(kv.lease).toString(16),
    fencingToken: BigInt(kv.create_revision),
    mode: modeOfKey(kv.key.toString()),
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
