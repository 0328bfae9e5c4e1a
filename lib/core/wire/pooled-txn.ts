import type { Etcd3, ICallable } from 'etcd3';
import { InvalidLockArgumentError } from '../errors.js';
import { decodeTxnResponse, encodeTxn, type WireTxn, type WireTxnResponse } from './txn-codec.js';

/**
 * The name under which etcd3's KV service client gets a method that sends an already encoded
 * `TxnRequest`. Round-trip counters see calls as `KV.txnEncoded`.
 */
export const ENCODED_TXN_METHOD = 'txnEncoded';

/** gRPC call options, as etcd3 takes them. */
type CallOptions = NonNullable<Parameters<ICallable<unknown>['exec']>[3]>;

interface UnaryClient {
  makeUnaryRequest(
    path: string,
    serialize: (request: Buffer) => Buffer,
    deserialize: (response: Buffer) => WireTxnResponse,
    request: Buffer,
    metadata: unknown,
    options: CallOptions,
    callback: (err: Error | null, res?: WireTxnResponse) => void,
  ): unknown;
}

type EncodedTxnMethod = (
  this: UnaryClient,
  request: Buffer,
  metadata: unknown,
  options: CallOptions,
  callback: (err: Error | null, res?: WireTxnResponse) => void,
) => unknown;

const sendEncoded: EncodedTxnMethod = function (request, metadata, options, callback) {
  return this.makeUnaryRequest('/etcdserverpb.KV/Txn', asIs, decodeTxnResponse, request, metadata, options, callback);
};

/**
 * Sends transactions encoded by {@link encodeTxn} through etcd3's own connection pool, so they
 * get everything an etcd3 call gets: host choice and circuit breakers, the retry policy, auth
 * tokens (renewed when etcd rejects them), default call options and etcd3's typed errors. Only
 * the protobufjs conversion of the request and response is left out.
 *
 * The pool runs `client[method](payload, metadata, options, callback)` on the KV service client,
 * so the one thing added is that method, on the service client class (once per etcd3 copy).
 */
export class EncodedTxns {
  private readonly pool: ICallable<unknown>;
  private installed: Promise<void> | undefined;

  constructor(client: Etcd3) {
    const pool = (client as unknown as { pool?: ICallable<unknown> }).pool;
    if (typeof pool?.exec !== 'function' || typeof pool.withConnection !== 'function') {
      throw new InvalidLockArgumentError(
        'client',
        'expected an Etcd3 client of the etcd3 package (1.x), got one without its connection pool',
      );
    }
    this.pool = pool;
  }

  async txn(txn: WireTxn, options: CallOptions): Promise<WireTxnResponse> {
    const request = encodeTxn(txn);
    await (this.installed ??= this.install());
    return this.pool.exec<WireTxnResponse>('KV', ENCODED_TXN_METHOD, request, options);
  }

  private async install(): Promise<void> {
    try {
      await this.pool.withConnection('KV', ({ client }) => {
        const prototype = Object.getPrototypeOf(client) as Record<string, unknown>;
        if (typeof (client as unknown as UnaryClient).makeUnaryRequest !== 'function') {
          throw new TypeError('etcd3 KV service client has no makeUnaryRequest');
        }
        prototype[ENCODED_TXN_METHOD] ??= sendEncoded;
      });
    } catch (err) {
      // e.g. authentication failed because etcd is down: try again with the next call.
      this.installed = undefined;
      throw err;
    }
  }
}

function asIs(request: Buffer): Buffer {
  return request;
}
