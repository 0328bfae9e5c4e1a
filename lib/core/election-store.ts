import type { Etcd3, IKeyValue } from 'etcd3';
import { prefixRangeEnd } from './keys.js';
import type { LeaderInfo } from './elections.js';

/**
 * The etcd requests of an election, each one round trip, in Go's `concurrency.Election` layout.
 * Every write is guarded so that repeating it (etcd3 retries calls that may have committed) does
 * nothing more than the first.
 */
export class ElectionStore {
  constructor(
    private readonly etcd: Etcd3,
    private readonly requestTimeoutMs: number,
  ) {}

  /**
   * Puts our candidate key if absent; finding it present (a retried put that committed, or a key
   * of this lease left by an earlier candidacy), keeps it and sets our value on it, as Go does.
   * Resolves with the key's create revision.
   */
  async put(key: string, value: string, leaseId: string): Promise<bigint> {
    const name = Buffer.from(key);
    const res = await this.etcd.kv.txn(
      {
        compare: [{ key: name, target: 'Create', result: 'Equal', create_revision: 0 }],
        success: [{ request_put: { key: name, value: Buffer.from(value), lease: leaseId } }],
        failure: [{ request_range: { key: name } }],
      },
      this.deadline(),
    );
    if (res.succeeded) return BigInt(res.header.revision);
    const existing = res.responses[0].response_range.kvs[0];
    const createRevision = BigInt(existing.create_revision);
    if (existing.value.toString() !== value) await this.proclaim(key, createRevision, value, leaseId);
    return createRevision;
  }

  /** Our own key's create revision now, if it exists. */
  async createRevisionOf(key: string): Promise<bigint | undefined> {
    const res = await this.etcd.kv.range({ key: Buffer.from(key), keys_only: true }, this.deadline());
    const [own] = res.kvs;
    return own && BigInt(own.create_revision);
  }

  /** The candidate with the lowest create revision: the leader. */
  async leader(keyPrefix: string): Promise<LeaderInfo | undefined> {
    const res = await this.etcd.kv.range(
      { key: Buffer.from(keyPrefix), range_end: prefixRangeEnd(keyPrefix), sort_target: 'Create', sort_order: 'Ascend', limit: 1 },
      this.deadline(),
    );
    return res.kvs[0] && toLeader(res.kvs[0]);
  }

  /** Puts `value` on our key only if it still has our create revision; false when it does not. */
  async proclaim(key: string, createRevision: bigint, value: string, leaseId: string): Promise<boolean> {
    const name = Buffer.from(key);
    const res = await this.etcd.kv.txn(
      {
        compare: [{ key: name, target: 'Create', result: 'Equal', create_revision: createRevision.toString() }],
        success: [{ request_put: { key: name, value: Buffer.from(value), lease: leaseId } }],
      },
      this.deadline(),
    );
    return res.succeeded;
  }

  /** Deletes our key only if it still has our create revision: never another candidate's key. */
  async deleteOwn(key: string, createRevision: bigint): Promise<void> {
    const name = Buffer.from(key);
    await this.etcd.kv.txn(
      {
        compare: [{ key: name, target: 'Create', result: 'Equal', create_revision: createRevision.toString() }],
        success: [{ request_delete_range: { key: name } }],
      },
      this.deadline(),
    );
  }

  /**
   * Deletes our key when the put's outcome is unknown. Safe unguarded: the key names our lease,
   * and this client runs one candidacy per name at a time.
   */
  async deleteUnique(key: string): Promise<void> {
    await this.etcd.kv.deleteRange({ key: Buffer.from(key) }, this.deadline());
  }

  private deadline() {
    return { deadline: Date.now() + this.requestTimeoutMs };
  }
}

function toLeader(kv: IKeyValue): LeaderInfo {
  return {
    key: kv.key.toString(),
    value: kv.value.toString(),
    leaseId: BigInt(kv.lease).toString(16),
    fencingToken: BigInt(kv.create_revision),
  };
}
