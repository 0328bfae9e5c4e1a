/**
 * Fault class "watch stream stalled": the member that carries a waiter's watch stream stops
 * answering (SIGSTOP) while the waiter's unary calls still reach the other members. The stream
 * does not break, so etcd3 never notices; the waiter must still be granted within a bound after
 * the holder releases, and shutdown must not wait for the stalled stream.
 */
import { jest } from '@jest/globals';
import { ConsecutiveBreaker, circuitBreaker, handleAll, type CircuitBreakerPolicy } from 'cockatiel';
import { EtcdLockClient } from '../../lib/index.js';
import { countRpcs, type RpcCounter } from '../support/rpc-counter.js';
import { startEtcd, startEtcdCluster, type EtcdCluster, type EtcdMember } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';

jest.setTimeout(60_000);

const TTL_S = 3;

/** The holder releases 100 ms into the wait; resolves with how long the waiter waited (ms), or the error's name. */
async function contendedRound(
  holder: EtcdLockClient,
  waiter: EtcdLockClient,
  resource: string,
  waitTimeout = 4000,
): Promise<number | string> {
  const held = await holder.acquire(resource);
  const started = performance.now();
  const waiting = waiter.acquire(resource, { waitTimeout });
  setTimeout(() => void held.release(), 100);
  try {
    const granted = await waiting;
    const waitedMs = performance.now() - started;
    await granted.release();
    return waitedMs;
  } catch (err) {
    return (err as Error).name;
  }
}

function describeRounds(rounds: Array<number | string>): string {
  return rounds.map(r => (typeof r === 'number' ? `${r.toFixed(0)} ms` : r)).join(', ');
}

describe('fault class: watch stream stalled, unary calls still served (3 members)', () => {
  let cluster: EtcdCluster;
  let carrier: EtcdMember;
  const clients: EtcdLockClient[] = [];

  beforeAll(async () => {
    cluster = await startEtcdCluster(3);
    const leader = await cluster.leader();
    // A follower, so that pausing it costs no election: only the waiter's watch stream suffers.
    carrier = cluster.members.find(m => m !== leader)!;
  });
  afterAll(async () => {
    if (carrier?.isRunning()) carrier.resume();
    await Promise.all(clients.map(c => c.close()));
    await cluster?.close();
  });

  /**
   * A holder on the other members, and a waiter whose watch stream is on the carrier while its
   * unary calls and new streams avoid the carrier (its circuit breaker for the carrier isolated).
   */
  async function waiterOnCarrier(prefix: string): Promise<{ holder: EtcdLockClient; waiter: EtcdLockClient; rpcs: RpcCounter }> {
    const others = cluster.members.filter(m => m !== carrier).map(m => m.clientUrl);
    const breakers = new Map<string, CircuitBreakerPolicy>();
    const holder = new EtcdLockClient({ hosts: others, prefix, ttl: TTL_S });
    const waiter = new EtcdLockClient({
      hosts: cluster.endpoints,
      prefix,
      ttl: TTL_S,
      requestTimeout: 1000,
      etcdOptions: {
        hosts: cluster.endpoints,
        faultHandling: {
          host: endpoint => {
            const breaker = circuitBreaker(handleAll, { halfOpenAfter: 500, breaker: new ConsecutiveBreaker(3) });
            breakers.set(endpoint, breaker);
            return breaker;
          },
        },
      },
    });
    clients.push(holder, waiter);
    const rpcs = countRpcs(waiter.etcd);
    // Everything of the waiter's goes to the carrier while its watch stream opens...
    const onlyCarrier = others.map(url => breakers.get(url) ?? fail(`no breaker for ${url}`)).map(b => b.isolate());
    await waiter.connect();
    await holder.connect();
    expect(typeof (await contendedRound(holder, waiter, 'r'))).toBe('number');
    // ...then its unary calls and new streams avoid the carrier, whose watch stream stays open.
    for (const isolation of onlyCarrier) isolation.dispose();
    breakers.get(carrier.clientUrl)!.isolate();
    return { holder, waiter, rpcs };
  }

  it('grants a waiter that queues after the stall within one re-read interval, then moves its watches to another member', async () => {
    const { holder, waiter } = await waiterOnCarrier('stall-new/');
    carrier.pause();
    const rounds: Array<number | string> = [];
    try {
      for (let round = 0; round < 3; round++) rounds.push(await contendedRound(holder, waiter, 'r'));
    } finally {
      carrier.resume();
    }
    console.log(`watch stall: waits queued after the watch stream's member was paused: ${describeRounds(rounds)}`);
    for (const waited of rounds) expect(typeof waited).toBe('number');
    // Round 0's watch create goes unanswered on the stalled stream: the periodic check (every
    // TTL/3 ± 25 %) sees it unconfirmed, rebuilds the stream and re-reads: granted.
    expect(rounds[0] as number).toBeLessThan((TTL_S * 1000 * 1.25) / 3 + 750);
    // Later rounds wait on the rebuilt stream, on another member: woken by the deletion itself.
    expect(rounds[1] as number).toBeLessThan(700);
    expect(rounds[2] as number).toBeLessThan(700);
  });

  it('grants a waiter whose watch was armed before the stall within one check interval plus the arm bound', async () => {
    const { holder, waiter, rpcs } = await waiterOnCarrier('stall-armed/');
    const held = await holder.acquire('r');
    const armedBefore = rpcs.armed;
    const waiting = waiter.acquire('r', { waitTimeout: 6000 });
    await waitFor(() => rpcs.armed > armedBefore, { message: "the waiter's watch armed on the carrier" });
    carrier.pause();
    let waitedMs: number | string;
    try {
      await held.release();
      const released = performance.now();
      waitedMs = await waiting.then(
        async lock => {
          const ms = performance.now() - released;
          await lock.release();
          return ms;
        },
        (err: Error) => err.name,
      );
    } finally {
      carrier.resume();
    }
    console.log(
      `watch stall: wait armed before the watch stream's member was paused: granted ${typeof waitedMs === 'number' ? `${waitedMs.toFixed(0)} ms` : waitedMs} after the release`,
    );
    expect(typeof waitedMs).toBe('number');
    // The check's probe goes unanswered (arm bound 1 s): the stream is rebuilt, its watches wake, the waiter re-reads.
    expect(waitedMs as number).toBeLessThan((TTL_S * 1000 * 1.25) / 3 + 1000 + 750);
  });
});

describe('close() with the watch stream stalled', () => {
  let etcd: EtcdCluster;

  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    if (etcd?.members[0].isRunning()) etcd.members[0].resume();
    await etcd?.close();
  });

  it('returns within requestTimeout while etcd is paused after a contended wait', async () => {
    const holder = new EtcdLockClient({ hosts: etcd.endpoints, prefix: 'close/', ttl: TTL_S });
    const client = new EtcdLockClient({ hosts: etcd.endpoints, prefix: 'close/', ttl: TTL_S, requestTimeout: 1000 });
    await Promise.all([holder.connect(), client.connect()]);
    expect(typeof (await contendedRound(holder, client, 'r'))).toBe('number');
    await holder.close();
    etcd.members[0].pause();
    try {
      const started = performance.now();
      const closed = await Promise.race([
        client.close().then(() => performance.now() - started),
        new Promise<string>(resolve => setTimeout(() => resolve('still pending after 5000 ms'), 5000).unref()),
      ]);
      console.log(`close() with etcd paused: ${typeof closed === 'number' ? `${closed.toFixed(0)} ms` : closed}`);
      expect(typeof closed).toBe('number');
      expect(closed as number).toBeLessThan(1000 + 500);
      expect(client.status().state).toBe('closed');
    } finally {
      etcd.members[0].resume();
    }
  });
});

function fail(message: string): never {
  throw new Error(message);
}
