import { jest } from '@jest/globals';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import {
  abnormalSkips,
  checkTicks,
  errorOutput,
  noisyOutput,
  runsOf,
  startFleet,
  unexplainedMisses,
  type TickInstance,
} from './tick-fleet.js';

/**
 * Three instances of one application (test/workers/tick-app.ts) in separate processes, their
 * wall clocks shifted by libfaketime, sharing one etcd; every job is a 1-second @Cron. The skew
 * window of a 1-second cron is 500 ms: the clocks below are at most 450 ms apart.
 */
const SKEWS = [-0.2, 0, 0.25];
const JOBS = ['job-0', 'job-5', 'job-200'];

jest.setTimeout(120_000);

let etcd: EtcdCluster;
let fleet: TickInstance[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
});
afterEach(async () => {
  await Promise.all(fleet.map(instance => instance.kill()));
  fleet = [];
});
afterAll(async () => {
  await etcd?.close();
});

/** Lets the fleet run for `ticks` whole seconds after all are up; returns the window [from, to] in which all were up. */
async function runFor(ticks: number): Promise<{ from: number; to: number }> {
  const from = Date.now();
  await new Promise(resolve => setTimeout(resolve, ticks * 1000));
  const to = Date.now();
  await Promise.all(fleet.map(instance => instance.stop()));
  // One window on each side: a tick at the edges may fall before an instance's first cron firing or after its stop.
  return { from: from + 1000, to: to - 1000 };
}

describe('@OncePerTick across three processes with skewed clocks, on etcd', () => {
  it('libfaketime shifts Date.now() of each instance and leaves the monotonic clock alone', async () => {
    fleet = await startFleet({ endpoints: etcd.endpoints, mode: 'once', skews: [-0.4, 0.4] });
    for (const instance of fleet) {
      const ready = instance.lines.find(l => l.type === 'ready')!;
      const shiftMs = ready.now - ready.receivedAt; // the line was printed before it was received
      expect(shiftMs).toBeLessThanOrEqual(instance.skewSeconds * 1000 + 5);
      expect(shiftMs).toBeGreaterThan(instance.skewSeconds * 1000 - 300);
      expect(Math.abs(Number(process.hrtime.bigint() - BigInt(ready.mono)) / 1e6 - (Date.now() - ready.receivedAt))).toBeLessThan(300);
    }
  });

  it('runs every tick of jobs of 0, 5 and 200 ms exactly once, and the skipping instances log nothing above debug', async () => {
    fleet = await startFleet({ endpoints: etcd.endpoints, mode: 'once', skews: SKEWS });
    const { from, to } = await runFor(8);
    const runs = runsOf(fleet);
    const check = checkTicks(runs, JOBS, from, to);
    const abnormal = abnormalSkips(fleet);
    console.log(
      `@OncePerTick, clocks ${SKEWS.join(' / ')} s: ${runs.length} runs, ${check.duplicates.length} twice, ${check.missed.length} missed; ` +
        `runs per instance ${fleet.map(i => `${i.name} ${runs.filter(r => r.instance === i.name).length}`).join(', ')}; skips other than claimed-elsewhere: ${abnormal.join('; ') || 'none'}`,
    );
    expect(check.duplicates).toEqual([]);
    expect(unexplainedMisses(check.missed, fleet)).toEqual([]);
    // Skipping because another instance ran the tick logs nothing above debug; only a late or failed claim warns.
    expect(noisyOutput(fleet).filter(line => !/ warn: tick .* skipped: (late|unavailable)/.test(line))).toEqual([]);
    // Each quiet skip is an event, naming a tick that another instance claimed: one that ran, or whose claimer reported it late.
    const skippedTicks = fleet.flatMap(i =>
      i.lines.filter(l => l.type === 'event' && l.event.type === 'skipped' && l.event.reason === 'claimed-elsewhere'),
    );
    expect(skippedTicks.length).toBeGreaterThan(runs.length / 2);
    const claimed = new Set([
      ...runs.map(r => `${r.job}@${new Date(r.scheduledAt).toISOString()}`),
      ...abnormal.map(line => line.split(' ')[1]),
    ]);
    expect(skippedTicks.map(l => `${l.event.job}@${l.event.scheduledAt}`).filter(tick => !claimed.has(tick))).toEqual([]);
    const tokens = runs.map(r => r.token);
    expect(new Set(tokens).size).toBe(tokens.length);
  });

  it('control: a plain try-lock (@Locked tryOnly) runs ticks twice and logs LockBusyError at error level', async () => {
    fleet = await startFleet({ endpoints: etcd.endpoints, mode: 'control', skews: SKEWS });
    const { from, to } = await runFor(6);
    const runs = runsOf(fleet);
    const check = checkTicks(runs, JOBS, from, to);
    const errors = errorOutput(fleet);
    console.log(
      `control (@Locked tryOnly), clocks ${SKEWS.join(' / ')} s: ${runs.length} runs, ${check.duplicates.length} ticks ran more than once; ${errors.length} error lines, e.g. ${errors[0]}`,
    );
    expect(check.duplicates.length).toBeGreaterThan(0);
    expect(errors.some(line => /LockBusyError/.test(line))).toBe(true);
  });

  it("overlap 'forbid' (default): a 1.5 s job never runs twice at once on any instance; the ticks it covers are skipped everywhere", async () => {
    fleet = await startFleet({ endpoints: etcd.endpoints, mode: 'forbid', skews: SKEWS });
    const { from, to } = await runFor(7);
    const runs = runsOf(fleet).sort((a, b) => Number(a.start - b.start));
    expect(runs.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < runs.length; i++) expect(runs[i].start).toBeGreaterThan(runs[i - 1].end!);
    const check = checkTicks(runs, ['slow'], from, to);
    console.log(
      `overlap forbid: ${runs.length} runs; ticks skipped while running: ${check.missed.length} (the missed-tick checker fails here, as it must)`,
    );
    expect(check.duplicates).toEqual([]);
    expect(check.missed.length).toBeGreaterThan(0);
    expect(fleet.some(i => i.lines.some(l => l.type === 'event' && l.event.type === 'skipped' && l.event.reason === 'still-running'))).toBe(
      true,
    );
    expect(noisyOutput(fleet).filter(line => !/ warn: tick .* skipped: (late|unavailable)/.test(line))).toEqual([]);
  });

  it("overlap 'allow': each tick of a 1.5 s job still runs once, overlapping the previous run", async () => {
    fleet = await startFleet({ endpoints: etcd.endpoints, mode: 'allow', skews: SKEWS });
    const { from, to } = await runFor(6);
    const runs = runsOf(fleet).sort((a, b) => Number(a.start - b.start));
    const check = checkTicks(runs, ['slow'], from, to);
    expect(check.duplicates).toEqual([]);
    expect(unexplainedMisses(check.missed, fleet)).toEqual([]);
    expect(runs.some((run, i) => i > 0 && run.start < runs[i - 1].end!)).toBe(true);
  });

  it('a runner killed mid-job: its tick is not run again, and a later tick runs on another instance', async () => {
    fleet = await startFleet({ endpoints: etcd.endpoints, mode: 'long', skews: SKEWS, ttl: 3 });
    await waitFor(() => runsOf(fleet).length > 0, { timeoutMs: 5000 });
    const [killed] = runsOf(fleet);
    const runner = fleet.find(i => i.name === killed.instance)!;
    await runner.kill();
    const killedAt = Date.now();
    const survivors = fleet.filter(i => i !== runner);
    // Its running key goes with its lease (TTL 3 s); then the next tick runs elsewhere.
    await waitFor(() => runsOf(survivors).length > 0, { timeoutMs: 8000, message: 'a tick run on a survivor' });
    const next = runsOf(survivors)[0];
    console.log(
      `runner ${killed.instance} killed during tick ${new Date(killed.scheduledAt).toISOString()}; next run ${new Date(next.scheduledAt).toISOString()} on ${next.instance}, ${next.scheduledAt - killedAt} ms after the kill`,
    );
    expect(next.scheduledAt).toBeGreaterThan(killed.scheduledAt);
    await new Promise(resolve => setTimeout(resolve, 1500));
    expect(runsOf(survivors).filter(r => r.scheduledAt === killed.scheduledAt)).toEqual([]);
  });
});
