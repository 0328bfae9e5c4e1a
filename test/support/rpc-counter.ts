/**
 * Counts the etcd requests of an etcd3 client, at its connection pool: the one way the specs measure
 * round trips (core, faults) or act at the instant a request is sent (network faults).
 */
import type { Etcd3 } from 'etcd3';

/** The unary RPCs (as `Service.method`) and watchers of one etcd3 client, since creation or reset(). */
export interface RpcCounter {
  /** Unary calls started (`KV.txn`, `KV.range`, `Lease.leaseGrant`, ...), in order. */
  readonly calls: string[];
  /** Unary calls that have completed (resolved or rejected). */
  completed: number;
  /** Watchers created (`etcd.watch()` calls). */
  watches: number;
  /** Watchers etcd confirmed ('connected'). */
  armed: number;
  /** Called synchronously inside each `etcd.watch()` call, before the watcher is created. */
  beforeWatch: (() => void) | undefined;
  /** Called synchronously right after each unary call has been sent. */
  onCall: ((call: string) => void) | undefined;
  reset(): void;
  restore(): void;
}

type Exec = (service: string, method: string, payload: unknown, options: unknown) => Promise<unknown>;

/**
 * Counts the round trips an etcd3 client makes: every unary RPC goes through its connection
 * pool's `exec` (KV, Lease, Auth, ...), every watcher through `watch()`. Streams that already
 * exist (keepalive, the shared watch stream) are not calls.
 */
export function countRpcs(etcd: Etcd3): RpcCounter {
  const pool = (etcd as unknown as { pool: { exec: Exec } }).pool;
  const originalExec = pool.exec;
  const originalWatch = etcd.watch;
  const counter: RpcCounter = {
    calls: [],
    completed: 0,
    watches: 0,
    armed: 0,
    beforeWatch: undefined,
    onCall: undefined,
    reset() {
      counter.calls.length = 0;
      counter.completed = 0;
      counter.watches = 0;
      counter.armed = 0;
    },
    restore() {
      pool.exec = originalExec;
      etcd.watch = originalWatch;
    },
  };
  pool.exec = function (this: unknown, service, method, payload, options) {
    counter.calls.push(`${service}.${method}`);
    const result = originalExec.call(this, service, method, payload, options).finally(() => counter.completed++);
    counter.onCall?.(`${service}.${method}`);
    return result;
  };
  etcd.watch = function (this: Etcd3) {
    counter.watches++;
    counter.beforeWatch?.();
    const builder = originalWatch.call(this);
    const watcher = builder.watcher.bind(builder);
    builder.watcher = () => {
      const created = watcher();
      created.once('connected', () => counter.armed++);
      return created;
    };
    return builder;
  };
  return counter;
}
