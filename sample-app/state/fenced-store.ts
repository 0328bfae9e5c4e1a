import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Etcd3, IKeyValue } from 'etcd3';
import { ETCD_LOCK_CLIENT, type EtcdLockClient } from '../../lib/index.js';
import { AppConfig } from '../config/app-config.js';
import { StaleFencingTokenError, StoreContentionError, StoreUnavailableError } from './store-errors.js';

/** How a record is kept in etcd: its state plus who wrote it last. */
interface StoredRecord<T> {
  state: T;
  /** Fencing token of the lock under which the state was written. */
  fencingToken: string;
  /** Id of the update that wrote it, to recognize our own write whose reply got lost. */
  writeId: string;
}

/** One record to update, and the fencing token of the lock that guards it. */
export interface FencedWrite {
  record: string;
  token: bigint;
}

/** What the store refused or retried, for the `/status` endpoint. */
export interface FencingReport {
  staleWritesRefused: number;
  casConflicts: number;
  lastRefusal?: string;
}

interface Snapshot<T> {
  value: StoredRecord<T> | undefined;
  /** The key's mod revision, '0' when absent (etcd compares a missing key's revisions as 0). */
  modRevision: string;
}

/** A lock holder keeps losing CAS races only if someone writes without the lock. */
const MAX_ATTEMPTS = 5;

/**
 * State records in etcd, written only by the holder of their lock, and safe even when that
 * holder is no longer the holder.
 *
 * A lock can expire under a paused or partitioned process, which then wakes up believing it still
 * holds it. So every record carries the fencing token of its last writer, and `update` is a
 * compare-and-swap: it reads the record with its mod revision, refuses if a newer token has
 * written it, computes the new state, and writes state and token in a transaction that commits
 * only if the mod revision is still the one it read. A stale holder's late write therefore fails
 * the comparison, re-reads, finds the newer token and is refused; it can never overwrite a newer
 * holder's state.
 */
@Injectable()
export class FencedStore {
  readonly report: FencingReport = { staleWritesRefused: 0, casConflicts: 0 };
  private readonly etcd: Etcd3;
  private readonly logger = new Logger(FencedStore.name);

  constructor(
    @Inject(ETCD_LOCK_CLIENT) private readonly lockClient: EtcdLockClient,
    private readonly config: AppConfig,
  ) {
    // State shares the lock client's connection: one set of etcd endpoints to configure.
    this.etcd = lockClient.etcd;
  }

  /** The current state of a record; `undefined` if it was never written. */
  async read<T>(record: string): Promise<T | undefined> {
    return (await this.snapshot<T>(record)).value?.state;
  }

  /** Every record under `recordPrefix`, all read at one revision (a consistent snapshot). */
  async readAll<T>(recordPrefix: string): Promise<{ revision: string; records: Map<string, T> }> {
    const prefix = this.key(recordPrefix);
    const res = await this.call('reading a snapshot', () => this.etcd.getAll().prefix(prefix).options(this.deadline()).exec());
    const records = new Map<string, T>();
    for (const kv of res.kvs) records.set(kv.key.toString().slice(this.config.statePrefix.length), decode<T>(kv).state);
    return { revision: res.header.revision, records };
  }

  /** {@link update} of a single record. */
  async updateOne<T>(record: string, token: bigint, change: (state: T | undefined) => T | Promise<T>): Promise<T> {
    const [state] = await this.update<T>([{ record, token }], async ([current]) => [await change(current)]);
    return state;
  }

  /**
   * Read-modify-write of one or more records, atomically and fenced. `change` receives the
   * current states (in the order of `writes`) and returns the new ones; it may throw to refuse
   * the change, and runs again if a record changed between the read and the write.
   * @throws StaleFencingTokenError when a later lock holder has written one of the records.
   */
  async update<T>(writes: readonly FencedWrite[], change: (states: Array<T | undefined>) => T[] | Promise<T[]>): Promise<T[]> {
    const writeId = randomUUID();
    let attempted: T[] | undefined;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const snapshots = await Promise.all(writes.map(write => this.snapshot<T>(write.record)));
      if (attempted) {
        // The comparison failed. Either etcd3 re-sent our transaction after a lost reply (the first
        // one committed: the records carry our write id), or someone else wrote in between.
        if (snapshots[0].value?.writeId === writeId) return attempted;
        this.report.casConflicts++;
        this.logger.warn(`${writes.map(w => w.record).join(', ')} changed between read and write; reading again`);
      }
      writes.forEach((write, i) => this.refuseIfStale(write, snapshots[i]));
      attempted = await change(snapshots.map(snapshot => snapshot.value?.state));
      if (await this.compareAndSwap(writes, snapshots, attempted, writeId)) return attempted;
    }
    throw new StoreContentionError(
      writes.map(w => w.record),
      MAX_ATTEMPTS,
    );
  }

  private refuseIfStale(write: FencedWrite, snapshot: Snapshot<unknown>): void {
    const stored = BigInt(snapshot.value?.fencingToken ?? 0);
    // An equal token is the same lock grant (a nested call of the same holder), not a stale one.
    if (stored <= write.token) return;
    const error = new StaleFencingTokenError(write.record, write.token, stored);
    this.report.staleWritesRefused++;
    this.report.lastRefusal = error.message;
    this.logger.warn(error.message);
    throw error;
  }

  private async compareAndSwap<T>(
    writes: readonly FencedWrite[],
    snapshots: Snapshot<T>[],
    states: T[],
    writeId: string,
  ): Promise<boolean> {
    if (states.length !== writes.length) throw new Error(`change returned ${states.length} states for ${writes.length} records`);
    const [first, ...rest] = writes.map((write, i) => ({ key: this.key(write.record), modRevision: snapshots[i].modRevision }));
    const txn = this.etcd.if(first.key, 'Mod', '==', first.modRevision);
    for (const { key, modRevision } of rest) txn.and(key, 'Mod', '==', modRevision);
    const puts = writes.map((write, i) => {
      const stored: StoredRecord<T> = { state: states[i], fencingToken: write.token.toString(), writeId };
      return this.etcd.put(this.key(write.record)).value(JSON.stringify(stored));
    });
    const res = await this.call('writing', () =>
      txn
        .then(...puts)
        .options(this.deadline())
        .commit(),
    );
    return res.succeeded;
  }

  private async snapshot<T>(record: string): Promise<Snapshot<T>> {
    const res = await this.call('reading', () => this.etcd.get(this.key(record)).options(this.deadline()).exec());
    const kv = res.kvs[0];
    return kv ? { value: decode<T>(kv), modRevision: kv.mod_revision } : { value: undefined, modRevision: '0' };
  }

  private key(record: string): string {
    return `${this.config.statePrefix}${record}`;
  }

  private deadline(): { deadline: number } {
    return { deadline: Date.now() + this.lockClient.options.requestTimeout };
  }

  private async call<R>(during: string, request: () => Promise<R>): Promise<R> {
    try {
      return await request();
    } catch (err) {
      throw new StoreUnavailableError(during, err);
    }
  }
}

function decode<T>(kv: IKeyValue): StoredRecord<T> {
  return JSON.parse(kv.value.toString()) as StoredRecord<T>;
}
