/**
 * The hand-written protobuf encoding of the lock's transactions, checked against the encoder that
 * etcd3 itself uses (@grpc/proto-loader over etcd3's rpc.proto): every request we encode must
 * decode there to exactly the request etcd3 would have sent, and every response etcd3's encoder
 * can produce must decode here to the same fields.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { decodeTxnResponse, encodeTxn, type WireTxn } from '../../lib/core/wire/txn-codec.js';

interface MethodDefinition {
  requestSerialize(value: unknown): Buffer;
  requestDeserialize(bytes: Buffer): Record<string, unknown>;
  responseSerialize(value: unknown): Buffer;
}

/** etcd3's own Txn codec: the same proto file and loader options as its connection pool. */
function etcd3TxnCodec(): MethodDefinition {
  const require = createRequire(import.meta.url);
  const etcd3Main = require.resolve('etcd3');
  const fromEtcd3 = createRequire(etcd3Main);
  const loader = fromEtcd3('@grpc/proto-loader') as {
    loadSync(file: string, options: object): Record<string, Record<string, MethodDefinition>>;
  };
  const definition = loader.loadSync(path.join(path.dirname(etcd3Main), '..', 'proto', 'rpc.proto'), {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return definition['etcdserverpb.KV'].Txn;
}

const codec = etcd3TxnCodec();
const buf = (s: string) => Buffer.from(s);

describe('etcd wire encoding', () => {
  it('encodes the acquisition transaction as etcd3 would (compare on absence, put on a lease, newest-first range)', () => {
    const txn: WireTxn = {
      compare: [{ key: buf('locks/a/1f_1'), createRevision: '0' }],
      success: [
        { put: { key: buf('locks/a/1f_1'), value: buf('{"owner":"x"}'), lease: '7587883452386525987' } },
        { range: { key: buf('locks/a/'), rangeEnd: buf('locks/a0'), newestFirst: true, limit: 2 } },
      ],
      failure: [{ range: { key: buf('locks/a/1f_1') } }],
    };
    const decoded = codec.requestDeserialize(encodeTxn(txn));
    expect(decoded).toMatchObject({
      compare: [{ result: 'Equal', target: 'Create', key: buf('locks/a/1f_1'), create_revision: '0', target_union: 'create_revision' }],
      success: [
        { request_put: { key: buf('locks/a/1f_1'), value: buf('{"owner":"x"}'), lease: '7587883452386525987', prev_kv: false } },
        {
          request_range: {
            key: buf('locks/a/'),
            range_end: buf('locks/a0'),
            limit: '2',
            sort_order: 'Descend',
            sort_target: 'Create',
            keys_only: true,
            count_only: false,
            max_create_revision: '0',
          },
        },
      ],
      failure: [{ request_range: { key: buf('locks/a/1f_1'), keys_only: true, sort_order: 'None', limit: '0' } }],
    });
  });

  it('encodes a range compare (try-only: the whole queue is empty), a guarded delete and a bounded read', () => {
    const decoded = codec.requestDeserialize(
      encodeTxn({
        compare: [
          { key: buf('p/'), rangeEnd: buf('p0'), createRevision: '0' },
          { key: buf('p/k'), createRevision: '9007199254740993' },
        ],
        success: [
          { deleteKey: buf('p/k') },
          { range: { key: buf('p/'), rangeEnd: buf('p0'), newestFirst: true, limit: 1, maxCreateRevision: '41' } },
        ],
      }),
    );
    expect(decoded).toMatchObject({
      compare: [
        { key: buf('p/'), range_end: buf('p0'), create_revision: '0', target: 'Create' },
        { key: buf('p/k'), create_revision: '9007199254740993', target: 'Create' },
      ],
      success: [
        { request_delete_range: { key: buf('p/k'), range_end: Buffer.alloc(0), prev_kv: false } },
        { request_range: { max_create_revision: '41', limit: '1' } },
      ],
      failure: [],
    });
  });

  it('encodes an oldest-first range (a semaphore counts the keys ahead from the oldest)', () => {
    const decoded = codec.requestDeserialize(
      encodeTxn({
        compare: [],
        success: [{ range: { key: buf('p/'), rangeEnd: buf('p0'), oldestFirst: true, limit: 4, maxCreateRevision: '41' } }],
      }),
    );
    expect(decoded).toMatchObject({
      success: [{ request_range: { sort_order: 'Ascend', sort_target: 'Create', limit: '4', max_create_revision: '41', keys_only: true } }],
    });
  });

  it('frames long keys (multi-byte lengths) and large lease ids exactly', () => {
    const key = Buffer.alloc(9000, 'k');
    const decoded = codec.requestDeserialize(
      encodeTxn({
        compare: [{ key, createRevision: '0' }],
        success: [{ put: { key, value: Buffer.alloc(200, 'v'), lease: '9223372036854775807' } }],
      }),
    ) as { success: Array<{ request_put: { key: Buffer; value: Buffer; lease: string } }> };
    expect(decoded.success[0].request_put.key.equals(key)).toBe(true);
    expect(decoded.success[0].request_put.value.length).toBe(200);
    expect(decoded.success[0].request_put.lease).toBe('9223372036854775807');
  });

  it('decodes the revision, the outcome and the keys of each range response, skipping every other field', () => {
    const encoded = codec.responseSerialize({
      header: { cluster_id: '14841639068965178418', member_id: '10276657743932975437', revision: '9007199254740995', raft_term: '3' },
      succeeded: true,
      responses: [
        { response_put: { header: { revision: '5' } } },
        {
          response_range: {
            header: { revision: '5' },
            kvs: [
              { key: buf('p/b'), create_revision: '5', mod_revision: '5', version: '1', value: buf('x'), lease: '77' },
              { key: buf('p/a'), create_revision: '9007199254740993', mod_revision: '4', version: '2', lease: '77' },
            ],
            more: true,
            count: '3',
          },
        },
        { response_delete_range: { deleted: '1' } },
      ],
    });
    expect(decodeTxnResponse(encoded)).toEqual({
      revision: '9007199254740995',
      succeeded: true,
      ranges: [
        [],
        [
          { key: buf('p/b'), createRevision: '5' },
          { key: buf('p/a'), createRevision: '9007199254740993' },
        ],
        [],
      ],
    });
  });

  it('decodes a failed transaction with an empty range, and rejects a truncated response', () => {
    const encoded = codec.responseSerialize({ header: { revision: '12' }, succeeded: false, responses: [{ response_range: { kvs: [] } }] });
    expect(decodeTxnResponse(encoded)).toEqual({ revision: '12', succeeded: false, ranges: [[]] });
    expect(() => decodeTxnResponse(encoded.subarray(0, encoded.length - 1))).toThrow(/truncated/);
  });
});
