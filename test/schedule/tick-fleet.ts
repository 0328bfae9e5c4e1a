import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../support/wait.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const TICK_APP = path.resolve(here, '../../dist/test/workers/tick-app.js');
/** Debian's libfaketime (package libfaketime): shifts the wall clock of a process, not CLOCK_MONOTONIC. */
export const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

export type Line = Record<string, any>;

/** One tick-app process, with its clock shifted by `skewSeconds`. */
export interface TickInstance {
  readonly name: string;
  readonly skewSeconds: number;
  readonly child: ChildProcess;
  /** Every JSON line it printed, and when the test received it (Date.now() of the test). */
  readonly lines: Array<Line & { receivedAt: number }>;
  readonly stderr: () => string;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export interface FleetOptions {
  endpoints: string[];
  mode: 'once' | 'control' | 'forbid' | 'allow' | 'long';
  skews: number[];
  ttl?: number;
}

/** Starts one instance per skew; resolves once every one is ready. */
export async function startFleet(options: FleetOptions): Promise<TickInstance[]> {
  const prefix = `tick-${options.mode}-${randomBytes(3).toString('hex')}/`;
  const instances = options.skews.map((skew, i) => startInstance(`app-${i + 1}`, skew, prefix, options));
  await waitFor(() => instances.every(instance => instance.lines.some(l => l.type === 'ready')), {
    timeoutMs: 30_000,
    message: () => instances.map(i => `${i.name}: ${JSON.stringify(i.lines.filter(l => l.type === 'error'))} ${i.stderr()}`).join('; '),
  });
  return instances;
}

function startInstance(name: string, skewSeconds: number, prefix: string, options: FleetOptions): TickInstance {
  if (!fs.existsSync(LIBFAKETIME)) throw new Error(`${LIBFAKETIME} missing: apt-get install libfaketime`);
  const env = {
    ...process.env,
    LD_PRELOAD: LIBFAKETIME,
    FAKETIME: `${skewSeconds >= 0 ? '+' : ''}${skewSeconds}`,
    FAKETIME_DONT_FAKE_MONOTONIC: '1',
    TICK_ETCD: options.endpoints.join(','),
    TICK_PREFIX: prefix,
    TICK_MODE: options.mode,
    TICK_INSTANCE: name,
    TICK_TTL: String(options.ttl ?? 5),
  };
  const child = spawn(process.execPath, [TICK_APP], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: TickInstance['lines'] = [];
  let stderr = '';
  child.stderr!.on('data', chunk => (stderr += chunk));
  createInterface({ input: child.stdout! }).on('line', line => {
    const receivedAt = Date.now();
    try {
      lines.push({ ...JSON.parse(line), receivedAt });
    } catch {
      lines.push({ type: 'raw', raw: line, receivedAt });
    }
  });
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()));
  return {
    name,
    skewSeconds,
    child,
    lines,
    stderr: () => stderr,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      child.stdin!.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface TickRun {
  instance: string;
  job: string;
  scheduledAt: number;
  token: string;
  start: bigint;
  end?: bigint;
}

/** Every run started, over all instances (a run killed mid-job has no `end`). */
export function runsOf(instances: TickInstance[]): TickRun[] {
  return instances.flatMap(instance =>
    instance.lines
      .filter(l => l.type === 'start')
      .map(l => {
        const done = instance.lines.find(
          d => d.type === 'run' && d.job === l.job && d.scheduledAt === l.scheduledAt && d.start === l.start,
        );
        return {
          instance: instance.name,
          job: l.job,
          scheduledAt: l.scheduledAt,
          token: l.token,
          start: BigInt(l.start),
          end: done ? BigInt(done.end) : undefined,
        };
      }),
  );
}

export interface TickCheck {
  /** Ticks that ran more than once: "job@time: app-1, app-3". */
  duplicates: string[];
  /** Scheduled ticks in [from, to] that ran nowhere. */
  missed: string[];
}

/** Checks runs of `jobs` against every whole second in [fromMs, toMs] (1-second crons). */
export function checkTicks(runs: TickRun[], jobs: string[], fromMs: number, toMs: number): TickCheck {
  const duplicates: string[] = [];
  const missed: string[] = [];
  for (const job of jobs) {
    const byTick = new Map<number, string[]>();
    for (const run of runs.filter(r => r.job === job)) byTick.set(run.scheduledAt, [...(byTick.get(run.scheduledAt) ?? []), run.instance]);
    for (const [tick, instances] of byTick)
      if (instances.length > 1) duplicates.push(`${job}@${new Date(tick).toISOString()}: ${instances.join(', ')}`);
    for (let tick = Math.ceil(fromMs / 1000) * 1000; tick <= toMs; tick += 1000) {
      if (!byTick.has(tick)) missed.push(`${job}@${new Date(tick).toISOString()}`);
    }
  }
  return { duplicates, missed };
}

/** What the application logged above debug (log, warn, error) once started, and its raw stderr, per instance. */
export function noisyOutput(instances: TickInstance[]): string[] {
  return instances.flatMap(instance => [
    ...instance.lines
      .slice(instance.lines.findIndex(l => l.type === 'ready'))
      .filter(l => l.type === 'log' && l.level !== 'debug' && l.level !== 'verbose')
      .map(l => `${instance.name} ${l.level}: ${l.message}`),
    ...instance
      .stderr()
      .split('\n')
      // The cron package's own note that a loaded machine fired a tick a few ms late: not ours, not about skipping.
      .filter(line => line.trim() && !line.startsWith('[Cron] Missed execution deadline'))
      .map(line => `${instance.name} stderr: ${line}`),
  ]);
}

/** Lines at error level, per instance. */
export function errorOutput(instances: TickInstance[]): string[] {
  return noisyOutput(instances).filter(line => / error: | stderr: /.test(line));
}

/**
 * The missed ticks that no instance explains. A claim answered more than S after its tick must not
 * run (at most once comes first), so on a starved machine a tick can be skipped everywhere, but
 * never silently: some instance reports it `late` or `unavailable`, with a warning.
 */
export function unexplainedMisses(missed: string[], instances: TickInstance[]): string[] {
  const explained = new Set(
    instances.flatMap(instance =>
      instance.lines
        .filter(l => l.type === 'event' && l.event.type === 'skipped' && (l.event.reason === 'late' || l.event.reason === 'unavailable'))
        .map(l => `${l.event.job}@${l.event.scheduledAt}`),
    ),
  );
  return missed.filter(tick => !explained.has(tick));
}

/** Skip reasons other than "another instance ran it", with the warnings they logged (only these may log). */
export function abnormalSkips(instances: TickInstance[]): string[] {
  return instances.flatMap(instance =>
    instance.lines
      .filter(l => l.type === 'event' && l.event.type === 'skipped' && l.event.reason !== 'claimed-elsewhere')
      .map(l => `${instance.name}: ${l.event.job}@${l.event.scheduledAt} ${l.event.reason}`),
  );
}
