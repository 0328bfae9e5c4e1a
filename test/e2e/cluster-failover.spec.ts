/**
 * Instances given all three members of a real etcd cluster, under conflicting load, while the
 * Raft leader is SIGKILLed mid-run. Requests may fail while a new leader is elected (the app
 * answers 503 or 409 then); what must hold is that no acknowledged update is lost, no seat is
 * booked twice, money is conserved, and the service recovers.
 */
import { jest } from '@jest/globals';
import { startEtcdCluster, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { getJson } from '../../sample-app/demo/http-json.js';
import { stopAllSampleApps } from '../../sample-app/demo/sample-app-process.js';
import { runCounterLoad } from '../../sample-app/demo/scenarios/counter-load.js';
import { failureOf, succeeded } from '../../sample-app/demo/scenarios/replies.js';
import { runSeatsLoad } from '../../sample-app/demo/scenarios/seats-load.js';
import { runTransfersLoad } from '../../sample-app/demo/scenarios/transfers-load.js';
import { startFleet, type Fleet } from './fleet.js';

jest.setTimeout(90_000);

const COUNTER_REQUESTS = 150;
/** The leader dies once this many increments are in. */
const KILL_AT = 40;

describe('sample-app: 3-member etcd cluster, leader SIGKILLed mid-run', () => {
  let cluster: EtcdCluster;
  let fleet: Fleet;

  beforeAll(async () => {
    cluster = await startEtcdCluster(3);
    fleet = await startFleet(3, cluster.endpoints, { name: 'failover', lockTtl: 5, env: { AUDIT_INTERVAL_MS: '0' } });
  });
  afterAll(async () => {
    await stopAllSampleApps();
    await cluster?.close();
  });

  it('loses no acknowledged update and books no seat twice', async () => {
    const seats = Array.from({ length: 8 }, (_, i) => `C${i + 1}`);
    const load = Promise.all([
      runCounterLoad(fleet.urls, { counter: 'failover', requests: COUNTER_REQUESTS, concurrency: 12 }),
      runSeatsLoad(fleet.urls, { seats, customersPerSeat: 6, concurrency: 6 }),
      runTransfersLoad(fleet.urls, { accounts: ['a', 'b', 'c'], transfers: 90, concurrency: 6, maxAmount: 40, seed: 11 }),
    ]);

    await waitFor(async () => Number((await getJson(`${fleet.urls[0]}/counters/failover`)).value) >= KILL_AT, {
      timeoutMs: 20_000,
      intervalMs: 20,
      message: `${KILL_AT} increments before the leader is killed`,
    });
    const leader = await cluster.leader();
    const killedAt = performance.now();
    await leader.kill('SIGKILL');
    const [counter, seatRun, transfers] = await load;

    const failures = [...counter.increments, ...seatRun.bookings, ...transfers.transfers]
      .map(r => r.reply)
      .filter(reply => !succeeded(reply) && reply.body.error !== 'SeatTaken' && reply.status !== 422);
    console.log(
      `leader ${leader.name} killed after ${KILL_AT} increments; ${failures.length} requests failed during the election: ` +
        JSON.stringify(countBy(failures.map(failureOf))),
    );
    // A failure is always an answer from the app, never a hang or an unexplained 500.
    expect(failures.filter(reply => ![503, 409].includes(reply.status)).map(failureOf)).toEqual([]);

    // Counter: no two acknowledged increments wrote the same value, and the final value accounts
    // for all of them (it may be higher: a 503 can hide a write that did commit).
    const values = counter.succeeded.map(i => i.value!);
    expect(new Set(values).size).toBe(values.length);
    expect(counter.finalValue).toBeGreaterThanOrEqual(counter.succeeded.length);
    expect(counter.finalValue).toBeLessThanOrEqual(COUNTER_REQUESTS);
    expect(Math.max(...values)).toBeLessThanOrEqual(counter.finalValue);
    expect(counter.lostUpdates).toBe(0);
    expect(counter.tokensRising).toBe(true);
    // The service came back: increments were acknowledged after the leader died.
    expect(counter.succeeded.filter(i => i.reply.startedAt > killedAt).length).toBeGreaterThan(0);

    // Seats: at most one customer told "booked" per seat, and the stored state names that one.
    expect(seatRun.doubleBookings).toBe(0);
    expect(seatRun.mismatches).toBe(0);

    // Transfers: each one is a single transaction, so money is conserved whatever failed.
    expect(transfers.conserved).toBe(true);
  });
});

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}
