/**
 * Several sample-app PROCESSES against one real etcd, all hit at once with conflicting requests:
 * no lost update, no double booking, money conserved, statements consistent beside transfers,
 * at most 2 exports at once, fencing tokens in write order. The same
 * load on the unlocked control endpoint loses updates, which shows that the test can fail.
 */
import { jest } from '@jest/globals';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { getJson } from '../../sample-app/demo/http-json.js';
import { stopAllSampleApps } from '../../sample-app/demo/sample-app-process.js';
import { runCounterLoad } from '../../sample-app/demo/scenarios/counter-load.js';
import { runExportsLoad } from '../../sample-app/demo/scenarios/exports-load.js';
import { failureOf, succeeded } from '../../sample-app/demo/scenarios/replies.js';
import { runSeatsLoad } from '../../sample-app/demo/scenarios/seats-load.js';
import { runStatementsLoad } from '../../sample-app/demo/scenarios/statements-load.js';
import { runTransfersLoad } from '../../sample-app/demo/scenarios/transfers-load.js';
import { startFleet, type Fleet } from './fleet.js';

jest.setTimeout(60_000);

const INSTANCES = 3;
const REQUESTS = 120;
const CONCURRENCY = 24;

describe('sample-app: several instances as separate processes on one etcd', () => {
  let etcd: EtcdCluster;
  let fleet: Fleet;

  beforeAll(async () => {
    etcd = await startEtcd();
    fleet = await startFleet(INSTANCES, etcd.endpoints, { name: 'many', lockTtl: 5, env: { AUDIT_INTERVAL_MS: '300' } });
  });
  afterAll(async () => {
    await stopAllSampleApps();
    await etcd?.close();
  });

  it(`counter: ${REQUESTS} increments spread over ${INSTANCES} instances lose nothing, tokens rise in write order`, async () => {
    const run = await runCounterLoad(fleet.urls, { counter: 'visits', requests: REQUESTS, concurrency: CONCURRENCY });
    expect(run.increments.filter(i => !succeeded(i.reply)).map(i => failureOf(i.reply))).toEqual([]);
    expect(run.finalValue).toBe(REQUESTS);
    expect(run.succeeded.map(i => i.value).sort((a, b) => a! - b!)).toEqual(Array.from({ length: REQUESTS }, (_, k) => k + 1));
    expect(run.lostUpdates).toBe(0);
    expect(run.tokensRising).toBe(true);
    // Every instance took part: the lock serialized requests across processes, not within one.
    expect(new Set(run.succeeded.map(i => i.reply.body.instance)).size).toBe(INSTANCES);
  });

  it('seats: each seat is booked exactly once, for the customer who was told so', async () => {
    const seats = Array.from({ length: 10 }, (_, i) => `R${i + 1}`);
    const run = await runSeatsLoad(fleet.urls, { seats, customersPerSeat: 6, concurrency: CONCURRENCY });
    expect(run.bookings.filter(b => !succeeded(b.reply) && b.reply.body.error !== 'SeatTaken').map(b => failureOf(b.reply))).toEqual([]);
    for (const seat of seats) {
      expect({ seat, winners: run.winners.get(seat)!.length }).toEqual({ seat, winners: 1 });
      expect(run.bookedBy.get(seat)).toBe(run.winners.get(seat)![0]);
    }
    expect(run.doubleBookings).toBe(0);
    expect(run.taken).toBe(seats.length * 5);
  });

  it('transfers both ways between shared accounts: no deadlock, money conserved, every balance exact', async () => {
    const run = await runTransfersLoad(fleet.urls, {
      accounts: ['a', 'b', 'c', 'd'],
      transfers: REQUESTS,
      concurrency: CONCURRENCY,
      maxAmount: 40,
      seed: 7,
    });
    expect(run.transfers.filter(t => !succeeded(t.reply) && t.reply.status !== 422).map(t => failureOf(t.reply))).toEqual([]);
    expect(run.conserved).toBe(true);
    expect(run.finalBalances).toEqual(run.expectedBalances);
    expect(run.succeeded.length).toBeGreaterThan(REQUESTS / 2);
  });

  it('the periodic @Locked audit job finds the books consistent', async () => {
    const finishedAt = Date.now();
    let audit: Record<string, unknown> = {};
    await waitFor(
      async () => {
        audit = await getJson(`${fleet.urls[0]}/accounts/audit`);
        return typeof audit.at === 'string' && Date.parse(audit.at) > finishedAt;
      },
      { timeoutMs: 10_000, message: () => `an audit after the transfers (last: ${JSON.stringify(audit)})` },
    );
    expect(audit).toMatchObject({ accounts: 4, total: 4000, expectedTotal: 4000, consistent: true });
  });

  it('statements read under shared locks beside transfers: every total is the money in the system; statements share', async () => {
    const accounts = ['s1', 's2', 's3', 's4'];
    const [transfers, statements] = await Promise.all([
      runTransfersLoad(fleet.urls, { accounts, transfers: 60, concurrency: 12, maxAmount: 40, seed: 11 }),
      runStatementsLoad(fleet.urls, { accounts, statements: 30, concurrency: 6, pauseMs: 5 }),
    ]);
    expect(statements.replies.filter(r => !succeeded(r)).map(failureOf)).toEqual([]);
    expect(transfers.conserved).toBe(true);
    expect(new Set(statements.totals)).toEqual(new Set([transfers.totalBefore]));
    expect(statements.maxReadersAtOnce).toBeGreaterThan(1);
  });

  it('exports: a semaphore of 2 lets at most 2 run at once across the instances, and reaches 2', async () => {
    const run = await runExportsLoad(fleet.urls, { exports: 12, concurrency: 6, workMs: 100 });
    expect(run.replies.filter(r => !succeeded(r)).map(failureOf)).toEqual([]);
    expect(run.slots).toBe(2);
    expect(run.maxRunningAtOnce).toBe(2);
    expect(new Set(run.replies.map(r => r.body.instance)).size).toBe(INSTANCES);
  });

  it('the fenced store never had to retry or refuse: the lock alone serialized every conflict', async () => {
    const reports = await fleet.fencingReports();
    expect(reports.map(r => [r.casConflicts, r.staleWritesRefused])).toEqual(Array(INSTANCES).fill([0, 0]));
  });

  it('control: the same load on the UNLOCKED endpoint loses updates', async () => {
    const run = await runCounterLoad(fleet.urls, { counter: 'visits', requests: REQUESTS, concurrency: CONCURRENCY, unlocked: true });
    expect(run.succeeded).toHaveLength(REQUESTS);
    expect(run.finalValue).toBeLessThan(REQUESTS);
    expect(run.lostUpdates).toBeGreaterThanOrEqual(REQUESTS - run.finalValue);
    console.log(`unlocked control: ${REQUESTS} acknowledged increments, final value ${run.finalValue}`);
  });
});
