/**
 * The guarded floor: the two transactions a lock with retry-safe writes and a guarded release
 * must send (put-if-absent + read of the queue; delete-if-create-revision), as plain etcd3 calls.
 * Used by the uncontended cycle and by the HTTP app's /guarded route.
 */
import type { Etcd3 } from 'etcd3';
import { prefixRangeEnd } from '../../lib/core/keys.js';

/** One acquire + release of `<prefix>k` on `lease` (decimal id), the way the lock does it. */
export async function guardedCycle(etcd: Etcd3, prefix: string, lease: string): Promise<void> {
  const key = Buffer.from(`${prefix}k`);
  const put = await etcd.kv.txn({
    compare: [{ key, target: 'Create', result: 'Equal', create_revision: 0 }],
    success: [
      { request_put: { key, value: Buffer.from('x'), lease } },
      {
        request_range: {
          key: Buffer.from(prefix),
          range_end: prefixRangeEnd(prefix),
          sort_target: 'Create',
          sort_order: 'Descend',
          limit: 2,
          keys_only: true,
        },
      },
    ],
    failure: [{ request_range: { key, keys_only: true } }],
  });
  await etcd.kv.txn({
    compare: [{ key, target: 'Create', result: 'Equal', create_revision: put.header.revision }],
    success: [{ request_delete_range: { key } }],
    failure: [],
  });
}
