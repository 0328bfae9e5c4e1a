import type { Etcd3, IKeyValue, IRequestOp } from 'etcd3';
import { LockClientClosedError } from './errors.js';
import { toLockError } from './etcd-errors.js';
import type { EtcdLockClient } from './etcd-lock-client.js';
import { TickClaims, type ClaimLease, type ClaimedKey, type PutAnswer } from './tick-claims.js';

/**
 * Tick claims on etcd, each one transaction: put the tick's key (and the job's running key)
 * bound to the lease if absent, else read them back. They live on the lock client's own session
 * lease (one keepalive stream for locks, ticks and elections), so a claim's lock has a `signal`
 * that aborts before etcd can expire its key.
 */
export class EtcdTickClaims extends TickClaims {
  private readonly etcd: Etcd3;
  private closed = false;
  protected override readonly landingMs: number;

  constructor(
    private readonly client: EtcdLockClient,
    prefix: string,
  ) {
    super(prefix, client.events, client.options.logger);
    this.etcd = client.etcd;
    this.landingMs = client.options.requestTimeout;
  }

  /** Grants the lease now, so that the first tick's claim is one round trip. */
  async connect(): Promise<void> {
    await this.lease();
  }

  protected lease(): Promise<ClaimLease> {
    if (this.closed) return Promise.reject(new LockClientClosedError());
    return this.client.leaseSession();
  }

  protected async putIfAbsent(
    keys: { tick: string; running?: string },
    value: string,
    lease: ClaimLease,
    timeoutMs: number,
  ): Promise<PutAnswer> {
    const names = [keys.tick, ...(keys.running ? [keys.running] : [])].map(key => Buffer.from(key));
    const put = (key: Buffer): IRequestOp => ({ request_put: { key, value: Buffer.from(value), lease: lease.leaseId } });
    try {
      const res = await this.etcd.kv.txn(
        {
          compare: names.map(key => ({ key, target: 'Create', result: 'Equal', create_revision: 0 })),
          success: names.map(put),
          failure: names.map(key => ({ request_range: { key } })),
        },
        { deadline: Date.now() + Math.min(timeoutMs, this.client.options.requestTimeout) },
      );
      if (res.succeeded) return { created: true, revision: BigInt(res.header.revision) };
      const [tick, running] = res.responses.map(r => claimedKey(r.response_range.kvs[0]));
      return { created: false, tick, running };
    } catch (err) {
      throw toLockError(err, `claiming tick ${keys.tick}`);
    }
  }

  protected async read(key: string): Promise<ClaimedKey | undefined> {
    const res = await this.etcd.kv.range({ key: Buffer.from(key) }, this.deadline());
    return claimedKey(res.kvs[0]);
  }

  protected async deleteIfCreatedAt(key: string, createRevision: bigint): Promise<void> {
    const name = Buffer.from(key);
    await this.etcd.kv.txn(
      {
        compare: [{ key: name, target: 'Create', result: 'Equal', create_revision: createRevision.toString() }],
        success: [{ request_delete_range: { key: name } }],
      },
      this.deadline(),
    );
  }

  /** The lease is the lock client's: it is revoked when that client closes, after the claims' holds. */
  protected async closeBackend(): Promise<void> {
    this.closed = true;
  }

  private deadline() {
    return { deadline: Date.now() + this.client.options.requestTimeout };
  }
}

function claimedKey(kv: IKeyValue | undefined): ClaimedKey | undefined {
  return kv && { value: kv.value.toString(), createRevision: BigInt(kv.create_revision) };
}
