/**
 * Helpers of the fault suite (test/faults): worker processes driven over stdin, the history
 * check against etcd's MVCC store, overlap/FIFO checks, lease-traffic recording and the figures
 * table. Everything talks to REAL etcd processes; nothing is mocked.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { observer } from '../core/helpers.js';
import { startEtcdCluster, type EtcdCluster } from '../support/etcd.js';
import { startFencedStore, type FencedStore } from '../support/fenced-store.js';
import { startWorker, type NodeWorker } from '../support/node-process.js';
import { waitFor } from '../support/wait.js';
import { prefixRangeEnd } from '../../lib/core/keys.js';
import type { FaultCommand, FaultMessageType } from '../workers/fault-protocol.js';

export type Message = Record<string, unknown>;

/** process.hrtime.bigint() as ms (CLOCK_MONOTONIC, shared with the worker processes). */
export const nowNs = () => process.hrtime.bigint();
export const msBetween = (from: bigint | string, to: bigint | string) => Number(BigInt(to) - BigInt(from)) / 1e6;

// ---------------------------------------------------------------------------
// Worker processes
// ---------------------------------------------------------------------------

export interface FaultWorker {
  readonly id: string;
  readonly pid: number;
  readonly process: NodeWorker;
  readonly messages: Message[];
  /** Sends one command; returns the index from which its answers are looked for. */
  send(command: FaultCommand): number;
  /** The first message at or after `from` (default: any) matching `predicate`. */
  next(predicate: (m: Message) => boolean, options?: { from?: number; timeoutMs?: number }): Promise<Message>;
  /** Sends a command and waits for the first answer of one of `types` about `resource`. */
  request(command: FaultCommand, types: FaultMessageType[], timeoutMs?: number): Promise<Message>;
  /** Messages of a type. */
  all(type: FaultMessageType): Message[];
  /** SIGSTOP; resolves once the kernel reports the process stopped. */
  stop(): Promise<void>;
  cont(): void;
  kill(): Promise<void>;
  /** Asks it to close its client (revokes its lease) and waits for its exit; kills it after the timeout. */
  close(timeoutMs?: number): Promise<void>;
}

export interface WorkerOptions {
  endpoints: string[];
  store: string;
  ttl?: number;
  prefix?: string;
  requestTimeoutMs?: number;
  /** A deliberately broken worker, for a checker's negative test (see fault-worker's --broken). */
  broken?: 'release-early';
}

const liveWorkers = new Set<FaultWorker>();

/** Starts `fault-worker` (compiled) and waits until it has connected (lease granted). */
export async function startFaultWorker(id: string, options: WorkerOptions): Promise<FaultWorker> {
  const args = ['--id', id, '--endpoints', options.endpoints.join(','), '--store', options.store, '--ttl', String(options.ttl ?? 2)];
  if (options.prefix) args.push('--prefix', options.prefix);
  if (options.requestTimeoutMs) args.push('--request-timeout', String(options.requestTimeoutMs));
  if (options.broken) args.push('--broken', options.broken);
  const proc = startWorker('fault-worker', args);
  const worker: FaultWorker = {
    id,
    get pid() {
      return proc.child.pid!;
    },
    process: proc,
    messages: proc.messages,
    send(command) {
      const from = proc.messages.length;
      proc.child.stdin!.write(`${JSON.stringify(command)}\n`);
      return from;
    },
    next(predicate, { from = 0, timeoutMs = 15_000 } = {}) {
      return proc.next(m => proc.messages.indexOf(m) >= from && predicate(m), timeoutMs);
    },
    async request(command, types, timeoutMs) {
      const from = worker.send(command);
      return worker.next(
        m => types.includes(m.type as FaultMessageType) && (command.resource === undefined || m.resource === command.resource),
        {
          from,
          timeoutMs,
        },
      );
    },
    all(type) {
      return proc.messages.filter(m => m.type === type);
    },
    async stop() {
      process.kill(proc.child.pid!, 'SIGSTOP');
      await waitFor(() => processState(proc.child.pid!) === 'T', { timeoutMs: 2000, intervalMs: 5, message: `worker ${id} stopped` });
    },
    cont() {
      process.kill(proc.child.pid!, 'SIGCONT');
    },
    async kill() {
      try {
        process.kill(proc.child.pid!, 'SIGCONT');
      } catch {
        // gone
      }
      await proc.kill();
      liveWorkers.delete(worker);
    },
    async close(timeoutMs = 5000) {
      if (proc.child.exitCode === null && proc.child.signalCode === null) {
        try {
          process.kill(proc.child.pid!, 'SIGCONT');
          worker.send({ cmd: 'close' });
        } catch {
          // gone
        }
        const timer = setTimeout(() => void proc.kill(), timeoutMs);
        await proc.exited;
        clearTimeout(timer);
      }
      liveWorkers.delete(worker);
    },
  };
  liveWorkers.add(worker);
  await worker.next(m => m.type === 'ready', { timeoutMs: 20_000 });
  return worker;
}

/** The state letter of /proc/<pid>/stat (R, S, T, Z, ...). */
export function processState(pid: number): string {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.charAt(stat.lastIndexOf(')') + 2);
}

/** Kills every worker still running (afterAll). */
export async function killAllWorkers(): Promise<void> {
  await Promise.all([...liveWorkers].map(w => w.kill()));
}

// ---------------------------------------------------------------------------
// etcd views
// ---------------------------------------------------------------------------

export { observer } from '../core/helpers.js';

/** What the specs with worker processes share: a 3-member cluster, the fenced store, a client to look at etcd. */
export interface FaultFixture {
  cluster: EtcdCluster;
  store: FencedStore;
  view: Etcd3;
}

export async function startFaultFixture(): Promise<FaultFixture> {
  const [cluster, store] = await Promise.all([startEtcdCluster(3), startFencedStore()]);
  return { cluster, store, view: observer(cluster.endpoints) };
}

/** afterAll: stops the workers first (they hold keys), then whatever of the fixture was started. */
export async function stopFaultFixture(fixture: Partial<FaultFixture>): Promise<void> {
  await killAllWorkers();
  fixture.view?.close();
  await fixture.store?.close();
  await fixture.cluster?.close();
}

export interface KeyEntry {
  key: string;
  createRevision: bigint;
  modRevision: bigint;
  lease: string;
}

/** Keys under `prefix` (at `revision`, default now), oldest create revision first. */
export async function keysAt(etcd: Etcd3, prefix: string, revision?: bigint): Promise<KeyEntry[]> {
  const res = await etcd.kv.range({
    key: Buffer.from(prefix),
    range_end: prefixRangeEnd(prefix),
    sort_target: 'Create',
    sort_order: 'Ascend',
    ...(revision === undefined ? {} : { revision: revision.toString() }),
  });
  return res.kvs.map(kv => ({
    key: kv.key.toString(),
    createRevision: BigInt(kv.create_revision),
    modRevision: BigInt(kv.mod_revision),
    lease: BigInt(kv.lease).toString(16),
  }));
}

export async function currentRevision(etcd: Etcd3): Promise<bigint> {
  const res = await etcd.kv.range({ key: Buffer.from('\0faults-no-such-key') });
  return BigInt(res.header.revision);
}

/** Lease ids (hex) currently alive on the cluster. */
export async function liveLeases(etcd: Etcd3): Promise<string[]> {
  const res = await etcd.leaseClient.leaseLeases();
  return res.leases.map(l => BigInt(l.ID).toString(16));
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

export interface Grant {
  resource: string;
  /** The resource's key prefix, e.g. `locks/r/`. */
  prefix: string;
  key: string;
  token: bigint;
  /** Grant time, ns (monotonic, shared clock). */
  at: bigint;
  /** Revision of a linearizable read made by the holder right after the grant, if it succeeded. */
  seenRevision?: bigint;
  worker?: string;
}

/**
 * The history check, read from etcd's MVCC store (so it must run before any compaction):
 * - the grant's token is its key's create revision: at revision `token` the key exists, created
 *   in exactly that revision;
 * - the key was entitled to hold when the holder ran: at the revision of the holder's first read
 *   after the grant, ranging the resource prefix by create revision gives that key first (every
 *   earlier waiter was gone) or, for the modes named in the key (see {@link heldWith}), only
 *   readers ahead of a reader, fewer than N keys ahead of a semaphore-of-N holder.
 * Returns one line per violation.
 */
export async function checkHistory(etcd: Etcd3, grants: Grant[]): Promise<{ violations: string[]; checkedAtSeen: number }> {
  const violations: string[] = [];
  let checkedAtSeen = 0;
  for (const grant of grants) {
    const atToken = await keysAt(etcd, grant.prefix, grant.token);
    const own = atToken.find(e => e.key === grant.key);
    if (!own || own.createRevision !== grant.token || own.modRevision !== grant.token) {
      violations.push(`${grant.key}: token ${grant.token} is not its create revision (${JSON.stringify(own, bigintJson)})`);
    }
    if (grant.seenRevision !== undefined) {
      checkedAtSeen++;
      const queue = await keysAt(etcd, grant.prefix, grant.seenRevision);
      const index = queue.findIndex(e => e.key === grant.key && e.createRevision === grant.token);
      if (index < 0 || !heldWith(grant.key, queue.slice(0, index))) {
        violations.push(
          `${grant.key} (token ${grant.token}) held at revision ${grant.seenRevision}, but the queue then was ${queue.map(e => `${e.key} (${e.createRevision})`).join(', ')}`,
        );
      }
    }
  }
  return { violations, checkedAtSeen };
}

/**
 * Whether a key may hold with `ahead` (oldest first) ahead of it, read from the key's own name
 * as the README states the format, independently of lib/: `…_<n>.r` is a reader (only readers
 * ahead), `…_<n>.s<N>` a semaphore's (fewer than N ahead), any other key a writer (nothing ahead).
 */
export function heldWith(key: string, ahead: readonly KeyEntry[]): boolean {
  if (/_[0-9a-z]+\.r$/.test(key)) return ahead.every(e => /_[0-9a-z]+\.r$/.test(e.key));
  const semaphore = /_[0-9a-z]+\.s([1-9][0-9]*)$/.exec(key);
  if (semaphore) return ahead.length < Number(semaphore[1]);
  return ahead.length === 0;
}

/**
 * In grant-time order, tokens must strictly rise per resource (FIFO by create revision: nobody
 * was served before a waiter that queued earlier). Returns the number of inversions.
 */
export function fifoInversions(grants: Grant[]): number {
  let inversions = 0;
  const byResource = groupBy(grants, g => g.resource);
  for (const list of byResource.values()) {
    const ordered = [...list].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
    for (let i = 1; i < ordered.length; i++) if (ordered[i]!.token <= ordered[i - 1]!.token) inversions++;
  }
  return inversions;
}

export interface Section {
  resource: string;
  token: bigint;
  enter: bigint;
  exit: bigint;
  /** A reader's section (of `contend` with `shared: true`). */
  shared?: boolean;
}

/** Pairs of critical sections of one resource whose [enter, exit] intervals intersect. */
export function overlaps(sections: Section[]): number {
  let count = 0;
  for (const list of groupBy(sections, s => s.resource).values()) {
    const ordered = [...list].sort((a, b) => (a.enter < b.enter ? -1 : a.enter > b.enter ? 1 : 0));
    let lastExit = -1n;
    for (const s of ordered) {
      if (s.enter < lastExit) count++;
      if (s.exit > lastExit) lastExit = s.exit;
    }
  }
  return count;
}

/** Pairs of sections of one resource that intersect with at least one not shared: a writer with anyone. */
export function writerOverlaps(sections: Section[]): number {
  let count = 0;
  for (const list of groupBy(sections, s => s.resource).values()) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const [a, b] = [list[i]!, list[j]!];
        if ((!a.shared || !b.shared) && a.enter < b.exit && b.enter < a.exit) count++;
      }
    }
  }
  return count;
}

/** The most sections of one resource open at the same instant (a semaphore's holders at once). */
export function maxConcurrent(sections: Section[]): number {
  let most = 0;
  for (const list of groupBy(sections, s => s.resource).values()) {
    // Exits sort before enters at the same instant: touching sections do not overlap.
    const edges = list.flatMap(s => [
      { at: s.enter, step: 1 },
      { at: s.exit, step: -1 },
    ]);
    edges.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.step - b.step));
    let open = 0;
    for (const edge of edges) most = Math.max(most, (open += edge.step));
  }
  return most;
}

export function sectionsOf(workers: FaultWorker[], prefixOf: (resource: string) => string): { sections: Section[]; grants: Grant[] } {
  const sections: Section[] = [];
  const grants: Grant[] = [];
  for (const w of workers) {
    for (const m of w.all('section')) {
      const token = BigInt(m.token as string);
      sections.push({
        resource: m.resource as string,
        token,
        enter: BigInt(m.enter as string),
        exit: BigInt(m.exit as string),
        ...(/\.r$/.test(m.key as string) ? { shared: true } : {}),
      });
      grants.push({
        resource: m.resource as string,
        prefix: prefixOf(m.resource as string),
        key: m.key as string,
        token,
        at: BigInt(m.enter as string),
        ...(m.seenRevision ? { seenRevision: BigInt(m.seenRevision as string) } : {}),
        worker: w.id,
      });
    }
  }
  return { sections, grants };
}

function groupBy<T>(items: T[], keyOf: (item: T) => string): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    map.set(key, [...(map.get(key) ?? []), item]);
  }
  return map;
}

function bigintJson(_key: string, value: unknown) {
  return typeof value === 'bigint' ? value.toString() : value;
}

// ---------------------------------------------------------------------------
// In-process lease traffic (for loss lead times)
// ---------------------------------------------------------------------------

export { recordLeaseTraffic, type LeaseTraffic } from '../support/lease-traffic.js';

export { abortedAt, withTimeout } from '../core/helpers.js';

export const delay = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------

export interface FigureRow {
  scenario: string;
  /** What must hold, as the issue's table states it. */
  bound: string;
  /** Measured figures, e.g. { violations: 0, takeoverMs: 2140 }. */
  figures: Record<string, string | number | boolean>;
  pass: boolean;
}

/**
 * Where this run's rows go: the fault reporter (test/support/faults-reporter.cjs) names a fresh
 * file per Jest run in NEST_ETCD_LOCK_FAULTS_FILE and prints the table at the end of the run.
 */
export const FIGURES_FILE = process.env.NEST_ETCD_LOCK_FAULTS_FILE ?? path.join(os.tmpdir(), 'nest-etcd-lock-faults.jsonl');

/** Prints a row and appends it to the run's figures file. Call it before the asserts, with `pass` computed. */
export function report(row: FigureRow): void {
  const figures = Object.entries(row.figures)
    .map(([name, value]) => `${name}=${typeof value === 'number' ? round(value) : value}`)
    .join(', ');
  console.log(`[faults] ${row.pass ? 'PASS' : 'FAIL'} ${row.scenario}: ${figures} (must hold: ${row.bound})`);
  fs.appendFileSync(FIGURES_FILE, `${JSON.stringify({ ...row, spec: path.basename(expect.getState().testPath ?? '') })}\n`);
}

function round(value: number): number {
  return Number.isInteger(value) ? value : Math.round(value * 10) / 10;
}

/** One round of a "waiter's lease revoked while queued" scenario. */
export interface RevokedWaiterRound {
  victimGranted: boolean;
  /** From the revocation to the victim's rejection. */
  rejectedAfterRevokeMs: number;
  nextGranted: boolean;
}

/** Reports the rounds of a revoked-waiter scenario; returns how many revoked waiters were granted (must be 0). */
export function reportRevokedWaiters(
  scenario: string,
  bound: string,
  rounds: RevokedWaiterRound[],
  figures: FigureRow['figures'] = {},
): number {
  const granted = rounds.filter(r => r.victimGranted).length;
  report({
    scenario,
    bound,
    figures: {
      ...figures,
      rounds: rounds.length,
      revokedWaitersGranted: granted,
      revokedWaiterRejectedMsMax: Math.max(...rounds.map(r => r.rejectedAfterRevokeMs)),
      nextWaiterGranted: rounds.filter(r => r.nextGranted).length,
    },
    pass: granted === 0 && rounds.every(r => r.nextGranted),
  });
  return granted;
}
