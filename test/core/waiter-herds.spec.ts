/**
 * Issue 14 point 9: herds. 10,000 waiters of one client on one resource; what a broken watch
 * stream and a session loss cost in etcd requests (counted at the client's connection pool, as in
 * round-trips.spec.ts). Each must stay O(1) per waiter: a stream reset costs one re-read per
 * waiter, spread over a second rather than all at once; a session loss costs the one revoke, no
 * per-waiter delete (the keys go with the lease).
 */
import { jest } from '@jest/globals';
import { EtcdLockClient, LockLostError } from '../../lib/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';
import { countRpcs, type RpcCounter } from '../support/rpc-counter.js';

/** 1,000 in the suite (2 shared cores); `HERD_WAITERS=10000` for the figures in RELIABILITY.md. */
const WAITERS = Number(process.env.HERD_WAITERS ?? 1000);
const TTL_S = 30; // periodic checks (every TTL/3 ± 25 %) come after the measurements

jest.setTimeout(60_000 + WAITERS * 120);

describe(`${WAITERS} waiters: the cost of a stream reset and of a session loss (real etcd)`, () => {
  let etcd: EtcdCluster;
  let proxy: TcpProxy;
  let holder: EtcdLockClient;
  let client: EtcdLockClient;
  let rpcs: RpcCounter;
  const callTimes: number[] = [];
  let waits: Array<Promise<unknown>>;

  beforeAll(async () => {
    etcd = await startEtcd();
    proxy = await startTcpProxy(etcd.endpoints[0]);
    holder = new EtcdLockClient({ hosts: etcd.endpoints, prefix: 'herd/', ttl: TTL_S });
    // A long request timeout: this test counts requests, it does not time them.
    client = new EtcdLockClient({ hosts: [proxy.url], prefix: 'herd/', ttl: TTL_S, waitTimeout: Infinity, requestTimeout: 30_000 });
    rpcs = countRpcs(client.etcd);
    rpcs.onCall = () => callTimes.push(performance.now());
    await Promise.all([holder.connect(), client.connect()]);
  });
  afterAll(async () => {
    rpcs?.restore();
    await client?.close();
    await holder?.close();
    await proxy?.close();
    await etcd?.close();
  });

  /** Every waiter queued with its watch armed, and no call in flight. */
  async function allWaiting(armedAtLeast: number, what: string): Promise<void> {
    await waitFor(() => rpcs.armed >= armedAtLeast && rpcs.completed === rpcs.calls.length, {
      timeoutMs: 30_000 + WAITERS * 40,
      intervalMs: 200,
      message: () => `${what} (${rpcs.armed} watches armed, ${rpcs.completed} of ${rpcs.calls.length} calls done)`,
    });
  }

  it(`queues ${WAITERS} waiters, survives a stream reset at one spread re-read each, and loses them at one revoke`, async () => {
    const held = await holder.acquire('r');
    rpcs.reset();
    const queuedAt = performance.now();
    waits = Array.from({ length: WAITERS }, () =>
      client.acquire('r').then(
        lock => lock.release(),
        (err: unknown) => err,
      ),
    );
    await allWaiting(WAITERS, 'every waiter queued and armed');
    const queueCalls = rpcs.calls.length;
    console.log(`herd: ${WAITERS} waiters queued and armed in ${(performance.now() - queuedAt).toFixed(0)} ms with ${queueCalls} calls`);

    // A stream reset: every connection of the client is reset, the watch stream with them.
    rpcs.reset();
    callTimes.length = 0;
    const resetAt = performance.now();
    proxy.setMode('reset');
    proxy.setMode('pass');
    await allWaiting(WAITERS, 'every waiter re-read and re-armed after the reset');
    const resetCalls = rpcs.calls.length;
    const spreadMs = callTimes.length > 0 ? callTimes[callTimes.length - 1] - callTimes[0] : 0;
    console.log(
      `herd: stream reset: ${resetCalls} calls (${(resetCalls / WAITERS).toFixed(2)} per waiter), issued over ${spreadMs.toFixed(0)} ms, ` +
        `all re-armed ${(performance.now() - resetAt).toFixed(0)} ms after the reset`,
    );
    expect(resetCalls).toBeGreaterThanOrEqual(WAITERS); // each waiter checked the queue again...
    expect(resetCalls).toBeLessThanOrEqual(WAITERS * 1.1 + 10); // ...once
    // Spread over up to a second (0.1 ms per waiter woken), not all at once.
    expect(spreadMs).toBeGreaterThan(Math.min(1000, WAITERS * 0.1) / 2);

    // A session loss: the client declares its lease lost (as at its deadline) while etcd is fine.
    rpcs.reset();
    const session = (client as unknown as { resolvedSessions: Map<number, { lose(reason: string): void }> }).resolvedSessions.get(TTL_S)!;
    session.lose('declared lost by the test');
    const outcomes = await Promise.all(waits);
    // The lease's keys go with it (revoked after the loss margin, or expired by etcd): poll the queue empty.
    await waitFor(async () => (await holder.inspect('r')).waiters.length === 0, {
      timeoutMs: (TTL_S + 2) * 1000,
      message: 'the lost lease took its waiters',
    });
    const counts = new Map<string, number>();
    for (const call of rpcs.calls) counts.set(call, (counts.get(call) ?? 0) + 1);
    const byCall = [...counts].map(([call, n]) => `${n} ${call}`);
    console.log(`herd: session loss: ${rpcs.calls.length} calls (${byCall.join(', ') || 'none'}) for ${WAITERS} waiters`);
    expect(outcomes.every(o => o instanceof LockLostError)).toBe(true);
    // At most a revoke and the client's one new lease for all waiters: no per-waiter delete.
    expect(rpcs.calls.filter(call => !call.startsWith('Lease.'))).toEqual([]);
    expect(rpcs.calls.length).toBeLessThanOrEqual(2);
    expect((await holder.inspect('r')).waiters).toEqual([]);
    await held.release();
  });
});
