/**
 * `npm run demo`: starts a local etcd and several sample-app processes, fires concurrent
 * conflicting requests at all of them, with and without the lock, and prints what happened.
 * Everything it starts is stopped again, also on Ctrl-C and on error.
 */
import { randomBytes } from 'node:crypto';
import { CleanupStack } from './cleanup-stack.js';
import { buildReport } from './demo-report.js';
import { getJson } from './http-json.js';
import { obtainEtcd, startLocalEtcd } from './local-etcd.js';
import { startSampleApp, stopAllSampleApps } from './sample-app-process.js';
import { runCounterLoad } from './scenarios/counter-load.js';
import { runExportsLoad } from './scenarios/exports-load.js';
import { collectHeartbeatTicks } from './scenarios/heartbeat-ticks.js';
import { runSeatsLoad } from './scenarios/seats-load.js';
import { runStatementsLoad } from './scenarios/statements-load.js';
import { runTransfersLoad } from './scenarios/transfers-load.js';
import { formatSummary } from './summary.js';
import type { FencingReport } from '../state/fenced-store.js';

const INSTANCES = 3;
/** Requests in flight at once, over all instances. */
const CONCURRENCY = 30;
const COUNTER_REQUESTS = 150;
const SEATS = Array.from({ length: 10 }, (_, i) => `A${i + 1}`);
const CUSTOMERS_PER_SEAT = 6;
const ACCOUNTS = ['alice', 'bob', 'carol', 'dave'];
const TRANSFERS = 100;
/** Statements of all ACCOUNTS read under shared locks while the transfers run. */
const STATEMENTS = 30;
/** More exports asked for at once than the semaphore (2 slots) lets run. */
const EXPORTS = 12;

async function main(): Promise<void> {
  const startedAt = performance.now();
  const cleanup = new CleanupStack();
  cleanup.runOnSignals();
  try {
    const step = (message: string) => console.log(`[demo ${((performance.now() - startedAt) / 1000).toFixed(1)}s] ${message}`);
    const etcdChoice = obtainEtcd(step);
    if ('missing' in etcdChoice) {
      console.error(etcdChoice.missing);
      process.exitCode = 1;
      return;
    }

    step(`starting etcd (${etcdChoice.bin}, ${etcdChoice.how})...`);
    const etcd = await startLocalEtcd(etcdChoice.bin);
    cleanup.push(() => etcd.close());

    const run = randomBytes(3).toString('hex');
    step(`starting ${INSTANCES} sample-app instances...`);
    cleanup.push(() => stopAllSampleApps());
    const instances = await Promise.all(
      Array.from({ length: INSTANCES }, (_, i) =>
        startSampleApp({
          name: `app-${i + 1}`,
          etcdHosts: etcd.endpoints,
          lockPrefix: `demo-${run}/locks/`,
          statePrefix: `demo-${run}/state/`,
          lockTtl: 5,
          env: { AUDIT_INTERVAL_MS: '500', HEARTBEAT: '1', TICK_PREFIX: `demo-${run}/ticks/`, ELECTION_PREFIX: `demo-${run}/elections/` },
        }),
      ),
    );
    const urls = instances.map(instance => instance.url);

    step(
      `with the lock: ${COUNTER_REQUESTS} counter increments, ${SEATS.length * CUSTOMERS_PER_SEAT} seat bookings, ${TRANSFERS} transfers ` +
        `beside ${STATEMENTS} statements, ${EXPORTS} exports, all at once...`,
    );
    const [counter, seats, transfers, statements, exports] = await Promise.all([
      runCounterLoad(urls, { counter: 'hits', requests: COUNTER_REQUESTS, concurrency: CONCURRENCY }),
      runSeatsLoad(urls, { seats: SEATS, customersPerSeat: CUSTOMERS_PER_SEAT, concurrency: CONCURRENCY }),
      runTransfersLoad(urls, { accounts: ACCOUNTS, transfers: TRANSFERS, concurrency: CONCURRENCY, maxAmount: 50, seed: 42 }),
      runStatementsLoad(urls, { accounts: ACCOUNTS, statements: STATEMENTS, concurrency: 6, pauseMs: 5 }),
      runExportsLoad(urls, { exports: EXPORTS, concurrency: 6, workMs: 100 }),
    ]);

    step(`without the lock: ${COUNTER_REQUESTS} increments of the unlocked control counter...`);
    const unlocked = await runCounterLoad(urls, { counter: 'hits', requests: COUNTER_REQUESTS, concurrency: CONCURRENCY, unlocked: true });

    const heartbeat = await collectHeartbeatTicks(urls);
    const perInstance = Object.entries(heartbeat.perInstance)
      .map(([name, runs]) => `${name} ${runs}`)
      .join(', ');
    step(
      `@OncePerTick heartbeat (every second, on all ${INSTANCES} instances): ${heartbeat.ticks} ticks, ` +
        `${heartbeat.ranTwice.length} ran twice, ${heartbeat.missed.length} missed (runs: ${perInstance}; skips: ${JSON.stringify(heartbeat.skipped)})`,
    );
    const { runsPerInstance, leading, lastReport } = heartbeat.leader;
    const ran = Object.entries(runsPerInstance).filter(([, runs]) => runs > 0);
    step(
      `@LeaderOnly occupancy report (every 500 ms, on all ${INSTANCES} instances): led by ${leading.join(', ') || 'nobody'}; ` +
        `runs: ${Object.entries(runsPerInstance)
          .map(([name, runs]) => `${name} ${runs}`)
          .join(', ')}` +
        (lastReport ? `; last report by ${lastReport.by}: ${lastReport.booked} seats booked at revision ${lastReport.revision}` : ''),
    );
    // Leadership moves only when a leader's lease is lost (a starved machine); say so when it did.
    if (ran.length > 1) console.log(`  the leadership moved during the demo: the report ran on ${ran.map(([name]) => name).join(', ')}`);
    // A miss is possible on a starved machine (the cron package drops a firing more than 250 ms late); twice never.
    if (heartbeat.missed.length > 0) console.log(`  heartbeat ticks that ran nowhere: ${heartbeat.missed.join(', ')}`);
    if (heartbeat.ranTwice.length > 0) {
      console.error(`heartbeat ticks run twice: ${heartbeat.ranTwice.join('; ')}`);
      process.exitCode = 1;
    }

    const statuses = await Promise.all(urls.map(url => getJson(`${url}/status`)));
    const fencing = { staleWritesRefused: 0, casConflicts: 0 };
    for (const status of statuses) {
      const report = status.fencing as FencingReport;
      fencing.staleWritesRefused += report.staleWritesRefused;
      fencing.casConflicts += report.casConflicts;
    }
    const report = buildReport({
      instances: instances.map(({ name, pid, url }) => ({ name, pid, url })),
      etcdEndpoint: etcd.endpoints[0],
      counter,
      seats,
      transfers,
      statements,
      exports,
      unlocked,
      audit: await getJson(`${urls[0]}/accounts/audit`),
      fencing,
    });

    step('stopping the instances and etcd...');
    await cleanup.run();
    console.log(formatSummary(report, performance.now() - startedAt));
    if (!report.consistent) process.exitCode = 1;
  } finally {
    await cleanup.run();
  }
}

main().catch(err => {
  console.error(`demo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
