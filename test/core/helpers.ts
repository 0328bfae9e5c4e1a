/**
 * Small helpers shared by the core integration specs. Everything here talks to REAL etcd
 * (through an etcd3 client or the library's own); nothing is mocked.
 */
import net from 'node:net';
import { Etcd3, type IKeyValue } from 'etcd3';

/** A plain etcd3 client for the test to look at (and tamper with) the lock keys from outside. */
export function observer(endpoints: string[]): Etcd3 {
  return new Etcd3({ hosts: endpoints });
}

export interface QueueEntry {
  key: string;
  createRevision: bigint;
  lease: string;
}

/** Every key under `prefix`, oldest create revision first. */
export async function readQueue(etcd: Etcd3, prefix: string): Promise<QueueEntry[]> {
  const res = await etcd.getAll().prefix(prefix).sort('Create', 'Ascend').exec();
  return res.kvs.map((kv: IKeyValue) => ({
    key: kv.key.toString(),
    createRevision: BigInt(kv.create_revision),
    lease: BigInt(kv.lease).toString(16),
  }));
}

/** The current revision of the store (one range round trip). */
export async function storeRevision(etcd: Etcd3): Promise<bigint> {
  const res = await etcd.getAll().prefix('\0-no-such-prefix/').exec();
  return BigInt(res.header.revision);
}

/** A loopback port with nothing listening on it. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>(resolve => server.close(() => resolve()));
  return port;
}

export type Outcome<T> = { status: 'fulfilled'; value: T } | { status: 'rejected'; reason: unknown } | { status: 'pending' };

/** Tracks a promise's outcome synchronously (and marks its rejection handled). */
export function track<T>(promise: Promise<T>): { readonly outcome: Outcome<T>; readonly promise: Promise<T> } {
  const state: { outcome: Outcome<T> } = { outcome: { status: 'pending' } };
  promise.then(
    value => (state.outcome = { status: 'fulfilled', value }),
    reason => (state.outcome = { status: 'rejected', reason }),
  );
  return {
    get outcome() {
      return state.outcome;
    },
    promise,
  };
}

/**
 * Asserts that `condition` stays false for `ms`. Only for negative checks ("X must NOT happen
 * before Y"), after the test has first waited for the event that makes X decidable.
 */
export async function staysFalse(condition: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (condition()) return false;
    await new Promise(resolve => setTimeout(resolve, 10));
  }
  return !condition();
}

/** Resolves with the value of the first event, or rejects after `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The promise of `signal`'s abort, with the performance.now() at which it fired. */
export function abortedAt(signal: AbortSignal): Promise<{ at: number; reason: unknown }> {
  return new Promise(resolve => {
    if (signal.aborted) resolve({ at: performance.now(), reason: signal.reason });
    else signal.addEventListener('abort', () => resolve({ at: performance.now(), reason: signal.reason }), { once: true });
  });
}
