import type { LockMode } from './lock-mode.js';

/** One key in a resource's queue. */
export interface LockQueueEntry {
  /** The etcd key. */
  key: string;
  /** The lease the key lives on, in hex (`etcdctl lease timetolive <id>`). */
  leaseId: string;
  /** The key's create revision: the fencing token it has (or will have) as holder. */
  fencingToken: bigint;
  /** `host:pid` of the process that queued it; absent for keys of other clients (etcdctl, Go). */
  owner?: string;
  /** When it joined the queue (for an uncontended lock, when it was granted). */
  queuedAt?: Date;
  /** How it holds or waits: exclusive (also every key of etcdctl and Go), shared, or a semaphore's. */
  mode: LockMode;
}

/**
 * A snapshot of one lock: who holds it, and who waits, in the order they will get it. A shared
 * lock or a semaphore may have several holders: `holders` lists them all, oldest first, and
 * `holder` is the oldest.
 */
export interface LockInspection {
  resource: string;
  holder: LockQueueEntry | undefined;
  holders: LockQueueEntry[];
  waiters: LockQueueEntry[];
}

/** What a waiter writes as its key's value, so inspection can say who and since when. */
export interface QueueEntryValue {
  owner: string;
  queuedAt: string;
}
