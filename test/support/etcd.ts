/**
 * Test harness that runs REAL etcd processes (never a mock) on free loopback ports.
 *
 *   const cluster = await startEtcdCluster(3);
 *   try { ... cluster.endpoints ... } finally { await cluster.close(); }
 *
 * No process is left behind:
 *  (a) every spawned PID is tracked and SIGKILLed synchronously on the exit of
 *      the (real, non-sandboxed) Node process;
 *  (b) every PID is registered in PID_REGISTRY_DIR until it exits; Jest's global
 *      setup / teardown sweep that registry;
 *  (c) a detached watchdog per test process SIGKILLs the registered children
 *      once the test process is gone (even if it was SIGKILLed).
 * All data dirs of a test process live under one temp root
 * (os.tmpdir()/nest-etcd-lock-data-<pid>-XXXXXX) that close() empties and the
 * exit hook / watchdog / global hooks remove.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import vm from 'node:vm';
import { randomBytes } from 'node:crypto';
import {
  PID_REGISTRY_DIR,
  TEMP_ROOT_PREFIX,
  createTempRoot,
  isAlive,
  registerPid,
  unregisterPid,
  type RegistryEntry,
} from './pid-registry.js';
import { etcdChildEnv, resolveEtcdBinaries, type EtcdLine } from './etcd-builds.js';

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

export interface EtcdMember {
  readonly name: string;
  /** 'http://127.0.0.1:PORT' */
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  /** etcd's own PID (changes after restart()). */
  readonly pid: number;
  /** Send `signal` (default SIGKILL); resolves once the process has exited. No-op when not running. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGSTOP */
  pause(): void;
  /** SIGCONT */
  resume(): void;
  /** Start again with the same name, ports and data dir (kills it first if running); resolves when healthy. */
  restart(): Promise<void>;
  isRunning(): boolean;
}

export interface EtcdCluster {
  readonly members: EtcdMember[];
  /** Client URLs of all members. */
  readonly endpoints: string[];
  /** The current Raft leader; polls (default up to 5 s) while no reachable member claims leadership. */
  leader(options?: { timeoutMs?: number }): Promise<EtcdMember>;
  /** Kill all members (and etcdctl processes spawned against them), remove temp dirs. Idempotent. */
  close(): Promise<void>;
}

export interface StartEtcdOptions {
  /** Appended after the harness' flags; Go's flag parser lets a later flag win, so these can override defaults. */
  extraArgs?: string[];
  /** Deadline for the members to become healthy (default 20 000 ms). */
  startTimeoutMs?: number;
}

/**
 * The servers under test: $ETCD_BIN / $ETCDCTL_BIN, else the line $ETCD_VERSION names (3.4 =
 * Debian's /usr/bin/etcd; 3.5, 3.6, 3.7 = pinned Go-module builds, built once into the cache by
 * Jest's global setup); default 3.6.
 */
const BINARIES = resolveEtcdBinaries();
/** The etcd line under test ('custom' when $ETCD_BIN names the server). */
export const ETCD_LINE: EtcdLine | 'custom' = BINARIES.line;
export const ETCD_BIN: string = BINARIES.etcd;
export const ETCDCTL_BIN: string = BINARIES.etcdctl;

/** The environment of every etcd and etcdctl the harness starts (without the selectors above). */
const CHILD_ENV: NodeJS.ProcessEnv = etcdChildEnv();

/** Raft timing used by the harness: min lease TTL = ceil(1.5 × 500 ms) = 1 s. */
export const HEARTBEAT_INTERVAL_MS = 50;
export const ELECTION_TIMEOUT_MS = 500;

const DEFAULT_START_TIMEOUT_MS = 20_000;
const MAX_START_ATTEMPTS = 5;
const STDERR_TAIL_LINES = 40;

export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdCluster> {
  return startEtcdCluster(1, options);
}

export async function startEtcdCluster(size = 3, options: StartEtcdOptions = {}): Promise<EtcdCluster> {
  if (!Number.isInteger(size) || size < 1) throw new Error(`startEtcdCluster: invalid size ${size}`);
  const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const deadline = Date.now() + startTimeoutMs;
  let lastError: unknown;

  for (let attempt = 1; attempt <= MAX_START_ATTEMPTS; attempt++) {
    const root = ensureProcessResources();
    const ports = await freePorts(size * 2);
    const token = `nest-etcd-lock-${process.pid}-${randomBytes(4).toString('hex')}`;
    const specs = await Promise.all(
      Array.from({ length: size }, async (_, i) => ({
        name: `etcd-${i}`,
        clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
        peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
        dataDir: await fsp.mkdtemp(path.join(root, `etcd-${i}-`)),
      })),
    );
    const initialCluster = specs.map(s => `${s.name}=${s.peerUrl}`).join(',');
    const members = specs.map(
      s =>
        new Member(
          s.name,
          s.clientUrl,
          s.peerUrl,
          s.dataDir,
          [
            `--name=${s.name}`,
            `--data-dir=${s.dataDir}`,
            `--listen-client-urls=${s.clientUrl}`,
            `--advertise-client-urls=${s.clientUrl}`,
            `--listen-peer-urls=${s.peerUrl}`,
            `--initial-advertise-peer-urls=${s.peerUrl}`,
            `--initial-cluster=${initialCluster}`,
            '--initial-cluster-state=new',
            `--initial-cluster-token=${token}`,
            ...defaultFlags(),
            ...(options.extraArgs ?? []),
          ],
          startTimeoutMs,
        ),
    );

    try {
      for (const m of members) m.spawn();
      await Promise.all(members.map(m => m.waitHealthy(deadline)));
      return new Cluster(members);
    } catch (err) {
      lastError = err;
      await Promise.all(members.map(m => m.kill('SIGKILL')));
      await Promise.all(specs.map(s => fsp.rm(s.dataDir, { recursive: true, force: true })));
      const retryable = err instanceof EtcdStartError && err.bindFailure && Date.now() < deadline;
      if (!retryable || attempt === MAX_START_ATTEMPTS) {
        if (err instanceof Error && attempt > 1) err.message = `(attempt ${attempt} of ${MAX_START_ATTEMPTS}) ${err.message}`;
        throw err;
      }
    }
  }
  throw lastError;
}

export interface EtcdctlResult {
  stdout: string;
  stderr: string;
  /** Exit code; null when killed by a signal (e.g. on timeout). */
  code: number | null;
}

export interface EtcdctlOptions {
  /** SIGKILL etcdctl after this long (default 10 000 ms); stderr then ends with a "[harness] timed out" line. */
  timeoutMs?: number;
  /** Merged over process.env and ETCDCTL_API=3. */
  env?: NodeJS.ProcessEnv;
  /** Written to etcdctl's stdin (e.g. for `txn`); stdin is closed otherwise. */
  input?: string;
}

/** etcdctl's arguments and environment for `endpoints` (API v3), shared by every way of running it. */
function etcdctlInvocation(endpoints: string[], args: string[], env?: NodeJS.ProcessEnv): { argv: string[]; env: NodeJS.ProcessEnv } {
  return { argv: [`--endpoints=${endpoints.join(',')}`, ...args], env: { ...CHILD_ENV, ETCDCTL_API: '3', ...env } };
}

/**
 * Turns etcd's auth on: adds `root` (with `password`) and enables auth, as an operator would with
 * etcdctl. Start etcd with `--auth-token-ttl=N` in `extraArgs` for short-lived simple tokens.
 * Resolves with the credentials for the client's `auth` option.
 */
export async function enableAuth(endpoints: string[], password = 'root-pw'): Promise<{ username: string; password: string }> {
  for (const args of [
    ['user', 'add', `root:${password}`],
    ['auth', 'enable'],
  ]) {
    const res = await etcdctl(endpoints, args);
    if (res.code !== 0) throw new Error(`etcdctl ${args.join(' ')} failed: ${res.stderr}`);
  }
  return { username: 'root', password };
}

/** Run `etcdctl --endpoints=<endpoints> ...args` (ETCDCTL_API=3) to completion. Never rejects on a non-zero exit. */
export function etcdctl(endpoints: string[], args: string[], options: EtcdctlOptions = {}): Promise<EtcdctlResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const { argv, env } = etcdctlInvocation(endpoints, args, options.env);
  return new Promise<EtcdctlResult>((resolve, reject) => {
    const child = spawn(ETCDCTL_BIN, argv, {
      env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    if (options.input !== undefined) child.stdin?.end(options.input);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', err => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', code => {
      clearTimeout(timer);
      if (timedOut) stderr += `\n[harness] etcdctl ${args.join(' ')} timed out after ${timeoutMs} ms`;
      resolve({ stdout, stderr, code });
    });
    if (child.pid !== undefined) track(child, 'etcdctl');
  });
}

/**
 * `etcdctl --endpoints=<endpoints> ...args` run synchronously, for a write that must commit before
 * the caller's next statement (e.g. inside a hook the code under test calls). Throws on failure.
 */
export function etcdctlSync(endpoints: string[], args: string[], timeoutMs = 10_000): string {
  const { argv, env } = etcdctlInvocation(endpoints, args);
  const res = spawnSync(ETCDCTL_BIN, argv, {
    env,
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  if (res.status !== 0) throw new Error(`etcdctl ${args.join(' ')} failed (${res.error?.message ?? `exit ${res.status}`}): ${res.stderr}`);
  return res.stdout;
}

/**
 * Start a long-running etcdctl (e.g. `etcdctl lock NAME`); stdio are pipes.
 * Tracked like etcd: killed by close() of a cluster it talks to, at process
 * exit, by the watchdog and by the global teardown. Kill it yourself to release.
 */
export function spawnEtcdctl(endpoints: string[], args: string[]): ChildProcess {
  const { argv, env } = etcdctlInvocation(endpoints, args);
  const child = spawn(ETCDCTL_BIN, argv, {
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  if (child.pid !== undefined) {
    track(child, 'etcdctl');
    const entry = { child, endpoints: [...endpoints] };
    spawnedEtcdctl.add(entry);
    child.once('exit', () => spawnedEtcdctl.delete(entry));
  }
  return child;
}

/** SIGKILL every process this module has spawned and is still running; resolves once they exited. */
export async function killAllSpawned(): Promise<void> {
  await Promise.all([...liveChildren].map(child => killChild(child, 'SIGKILL')));
}

/** GET {clientUrl}/health; rejects on connection error or when no answer arrives within timeoutMs. */
export async function requestHealth(clientUrl: string, timeoutMs = 1000): Promise<{ health: string; reason?: string }> {
  const res = await httpRequest(`${clientUrl}/health`, { method: 'GET', timeoutMs });
  return JSON.parse(res.body) as { health: string; reason?: string };
}

/** True iff {clientUrl}/health answers {"health":"true"} within timeoutMs. */
export async function isHealthy(clientUrl: string, timeoutMs = 1000): Promise<boolean> {
  try {
    return (await requestHealth(clientUrl, timeoutMs)).health === 'true';
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// etcd flags
// ---------------------------------------------------------------------------

let noFsyncSupported: boolean | undefined;

/** etcd 3.4.23 accepts `--unsafe-no-fsync` but does not list it in `etcd --help`; probe the flag parser. */
function supportsUnsafeNoFsync(): boolean {
  if (noFsyncSupported === undefined) {
    const probe = spawnSync(ETCD_BIN, ['--unsafe-no-fsync', '--version'], { stdio: 'ignore', timeout: 10_000, env: CHILD_ENV });
    noFsyncSupported = probe.status === 0;
  }
  return noFsyncSupported;
}

function defaultFlags(): string[] {
  return [
    `--heartbeat-interval=${HEARTBEAT_INTERVAL_MS}`,
    `--election-timeout=${ELECTION_TIMEOUT_MS}`,
    ...(supportsUnsafeNoFsync() ? ['--unsafe-no-fsync'] : []),
    '--logger=zap',
    '--log-outputs=stderr',
    '--log-level=error',
  ];
}

// ---------------------------------------------------------------------------
// Members and clusters
// ---------------------------------------------------------------------------

class EtcdStartError extends Error {
  constructor(
    message: string,
    readonly bindFailure: boolean,
  ) {
    super(message);
    this.name = 'EtcdStartError';
  }
}

interface MemberStatus {
  memberId: string;
  leader: string;
  raftTerm: bigint;
}

class Member implements EtcdMember {
  private child: ChildProcess | undefined;
  private lastPid = -1;
  private paused = false;
  private spawnError: Error | undefined;
  private tail: string[] = [];

  constructor(
    readonly name: string,
    readonly clientUrl: string,
    readonly peerUrl: string,
    readonly dataDir: string,
    private readonly args: readonly string[],
    private readonly startTimeoutMs: number,
  ) {}

  get pid(): number {
    return this.lastPid;
  }

  spawn(): void {
    if (this.isRunning()) throw new Error(`${this.name} is already running (pid ${this.lastPid})`);
    this.tail = [];
    this.paused = false;
    this.spawnError = undefined;
    const child = spawn(ETCD_BIN, this.args, { stdio: ['ignore', 'pipe', 'pipe'], env: CHILD_ENV });
    this.child = child;
    child.once('error', err => {
      this.spawnError = err;
    });
    for (const stream of [child.stdout, child.stderr]) {
      let partial = '';
      stream?.setEncoding('utf8').on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        this.pushTail(lines);
      });
      stream?.once('end', () => partial && this.pushTail([partial]));
    }
    if (child.pid === undefined) return; // 'error' follows
    this.lastPid = child.pid;
    track(child, 'etcd', this.dataDir);
  }

  private pushTail(lines: string[]): void {
    for (const line of lines) {
      if (line.trim() === '') continue;
      this.tail.push(line.length > 2000 ? `${line.slice(0, 2000)}…` : line);
    }
    if (this.tail.length > STDERR_TAIL_LINES) this.tail.splice(0, this.tail.length - STDERR_TAIL_LINES);
  }

  stderrTail(): string {
    return this.tail.join('\n');
  }

  isRunning(): boolean {
    const child = this.child;
    return (
      child !== undefined &&
      child.pid !== undefined &&
      this.spawnError === undefined &&
      child.exitCode === null &&
      child.signalCode === null
    );
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || !this.isRunning()) return;
    const wasPaused = this.paused;
    this.paused = false;
    await killChild(child, signal, wasPaused);
  }

  pause(): void {
    this.assertRunning('pause');
    hostProcess.kill(this.lastPid, 'SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    this.assertRunning('resume');
    hostProcess.kill(this.lastPid, 'SIGCONT');
    this.paused = false;
  }

  async restart(): Promise<void> {
    await this.kill('SIGKILL');
    this.spawn();
    await this.waitHealthy(Date.now() + this.startTimeoutMs);
  }

  private assertRunning(what: string): void {
    if (!this.isRunning()) throw new Error(`cannot ${what} ${this.name}: not running`);
  }

  /** Poll /health until {"health":"true"}; throws with the last stderr lines on exit or deadline. */
  async waitHealthy(deadline: number): Promise<void> {
    for (;;) {
      if (!this.isRunning()) {
        const how =
          this.spawnError || this.child?.pid === undefined
            ? `failed to spawn ${ETCD_BIN}${this.spawnError ? `: ${this.spawnError.message}` : ''}`
            : `exited during startup (code ${this.child.exitCode}, signal ${this.child.signalCode})`;
        throw this.startError(how);
      }
      if (await isHealthy(this.clientUrl, Math.min(1000, Math.max(deadline - Date.now(), 100)))) return;
      if (Date.now() >= deadline) throw this.startError('did not become healthy before the deadline');
      await delay(50);
    }
  }

  private startError(what: string): EtcdStartError {
    const tail = this.stderrTail();
    return new EtcdStartError(
      `etcd member ${this.name} (client ${this.clientUrl}, peer ${this.peerUrl}, pid ${this.lastPid}) ${what}.\n` +
        `command: ${ETCD_BIN} ${this.args.join(' ')}\n` +
        `last output lines:\n${tail || '(none)'}`,
      /address already in use|bind: /i.test(tail),
    );
  }

  /** Maintenance status over the gRPC gateway (uint64 ids stay strings, unlike `etcdctl -w json`). */
  async status(timeoutMs: number): Promise<MemberStatus> {
    const res = await httpRequest(`${this.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}', timeoutMs });
    if (res.status !== 200) throw new Error(`${this.name}: status HTTP ${res.status}: ${res.body}`);
    const json = JSON.parse(res.body) as { header?: { member_id?: string }; leader?: string; raftTerm?: string };
    return {
      memberId: json.header?.member_id ?? '0',
      leader: json.leader ?? '0',
      raftTerm: BigInt(json.raftTerm ?? '0'),
    };
  }
}

class Cluster implements EtcdCluster {
  readonly endpoints: string[];
  private closing: Promise<void> | undefined;

  constructor(private readonly memberList: Member[]) {
    this.endpoints = memberList.map(m => m.clientUrl);
  }

  get members(): EtcdMember[] {
    return this.memberList;
  }

  async leader(options: { timeoutMs?: number } = {}): Promise<EtcdMember> {
    const timeoutMs = options.timeoutMs ?? 5000;
    const deadline = Date.now() + timeoutMs;
    let seen: string;
    for (;;) {
      const answers = await Promise.all(
        this.memberList
          .filter(m => m.isRunning())
          .map(m =>
            m.status(Math.min(500, Math.max(deadline - Date.now(), 100))).then(
              s => ({ m, s }),
              (err: unknown) => ({ m, err }),
            ),
          ),
      );
      let best: { m: Member; s: MemberStatus } | undefined;
      for (const a of answers) {
        if ('s' in a && a.s.leader !== '0' && a.s.leader === a.s.memberId) {
          if (!best || a.s.raftTerm > best.s.raftTerm) best = a;
        }
      }
      if (best) return best.m;
      seen = answers
        .map(a =>
          's' in a
            ? `${a.m.name}: id ${a.s.memberId}, leader ${a.s.leader}, term ${a.s.raftTerm}`
            : `${a.m.name}: ${a.err instanceof Error ? a.err.message : String(a.err)}`,
        )
        .join('; ');
      if (Date.now() >= deadline) break;
      await delay(50);
    }
    throw new Error(`no etcd leader within ${timeoutMs} ms (${seen || 'no member running'})`);
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    const endpoints = new Set(this.endpoints);
    const clients = [...spawnedEtcdctl].filter(e => e.endpoints.some(u => endpoints.has(u)));
    await Promise.all([
      ...clients.map(e => killChild(e.child, 'SIGKILL')),
      ...this.memberList.map(async m => {
        if (m.isRunning()) {
          try {
            m.resume(); // SIGCONT first in case it is paused
          } catch {
            // exited meanwhile
          }
        }
        await m.kill('SIGKILL');
      }),
    ]);
    await Promise.all(this.memberList.map(m => fsp.rm(m.dataDir, { recursive: true, force: true })));
  }
}

// ---------------------------------------------------------------------------
// Process tracking: in-process exit hook, registry, watchdog
// ---------------------------------------------------------------------------

/**
 * Jest gives each test file a *copy* of `process` whose 'exit' event never
 * fires; the real one is the global of the outer (host) context.
 */
function resolveHostProcess(): NodeJS.Process {
  try {
    const host = vm.runInThisContext('typeof process === "object" ? process : undefined') as NodeJS.Process | undefined;
    if (host && typeof host.on === 'function' && typeof host.kill === 'function' && host.pid === process.pid) {
      return host;
    }
  } catch {
    // not available: fall back
  }
  return process;
}

const hostProcess = resolveHostProcess();

interface SharedState {
  /** PIDs spawned by any instance of this module in this process and not yet exited. */
  pids: Set<number>;
  watchdogPid: number | undefined;
  /** This process' temp root for data dirs. */
  tempRoot: string | undefined;
}

/** Shared by all instances of this module in one process (Jest loads it once per test file). */
const state: SharedState = (() => {
  const key = Symbol.for('nest-etcd-lock.etcd-harness');
  const holder = hostProcess as unknown as Record<symbol, SharedState | undefined>;
  let existing = holder[key];
  if (!existing) {
    const created: SharedState = { pids: new Set(), watchdogPid: undefined, tempRoot: undefined };
    existing = created;
    holder[key] = created;
    hostProcess.on('exit', () => {
      for (const pid of created.pids) {
        try {
          hostProcess.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
        try {
          fs.unlinkSync(path.join(PID_REGISTRY_DIR, String(pid)));
        } catch {
          // already gone
        }
      }
      created.pids.clear();
      if (created.tempRoot !== undefined) {
        try {
          fs.rmSync(created.tempRoot, { recursive: true, force: true, maxRetries: 3 });
        } catch {
          // the watchdog / global teardown retries
        }
      }
      if (created.watchdogPid !== undefined) {
        try {
          hostProcess.kill(created.watchdogPid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    });
  }
  return existing;
})();

/** Children spawned by this module instance that have not exited yet. */
const liveChildren = new Set<ChildProcess>();
const spawnedEtcdctl = new Set<{ child: ChildProcess; endpoints: string[] }>();

function track(child: ChildProcess, kind: RegistryEntry['kind'], dataDir?: string): void {
  const pid = child.pid;
  if (pid === undefined) return;
  ensureProcessResources();
  state.pids.add(pid);
  liveChildren.add(child);
  const entry: RegistryEntry = {
    pid,
    owner: hostProcess.pid,
    ownerParent: hostProcess.ppid,
    kind,
    startedAt: new Date().toISOString(),
    ...(dataDir === undefined ? {} : { dataDir }),
  };
  try {
    registerPid(entry);
  } catch {
    // the in-process hook still covers it
  }
  child.once('exit', () => {
    state.pids.delete(pid);
    liveChildren.delete(child);
    unregisterPid(pid);
  });
  // Do not keep the test process alive for these; the exit hook kills them.
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) {
    (stream as unknown as { unref?: () => void } | null)?.unref?.();
  }
}

async function killChild(child: ChildProcess, signal: NodeJS.Signals, sendCont = false): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()));
  child.ref(); // keep the event loop alive until the 'exit' event
  try {
    hostProcess.kill(child.pid, signal);
    if (sendCont && signal !== 'SIGKILL') hostProcess.kill(child.pid, 'SIGCONT');
  } catch {
    // exited meanwhile; 'exit' is (or will be) emitted
  }
  await exited;
  child.unref();
}

const WATCHDOG_MARKER = 'nest-etcd-lock-watchdog';

/**
 * Plain JS run by `node -e` in a detached process: every 500 ms check whether
 * the owner is still alive; once it is gone (or a zombie), SIGKILL every
 * registered etcd/etcdctl it owned, remove their entries and the owner's temp
 * root (data dirs), exit.
 */
const WATCHDOG_SOURCE = String.raw`
const fs = require('fs'), path = require('path'), os = require('os');
const owner = Number(process.argv[2]);
const dir = process.argv[3];
const root = process.argv[4];
const tmp = path.resolve(os.tmpdir());
function alive(pid) {
  try { process.kill(pid, 0); } catch (e) { return e.code === 'EPERM'; }
  try {
    const stat = fs.readFileSync('/proc/' + pid + '/stat', 'utf8');
    const st = stat.charAt(stat.lastIndexOf(')') + 2);
    return st !== 'Z' && st !== 'X';
  } catch (e) { return true; }
}
function isEtcd(pid) {
  try {
    const argv0 = fs.readFileSync('/proc/' + pid + '/cmdline', 'utf8').split('\0')[0];
    return path.basename(argv0).startsWith('etcd');
  } catch (e) { return false; }
}
function sweep() {
  let names = [];
  try { names = fs.readdirSync(dir); } catch (e) { return; }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const file = path.join(dir, name);
    let entry;
    try { entry = JSON.parse(fs.readFileSync(file, 'utf8')); } catch (e) { continue; }
    if (entry.owner !== owner) continue;
    const pid = Number(name);
    if (alive(pid) && isEtcd(pid)) { try { process.kill(pid, 'SIGKILL'); } catch (e) {} }
    try { fs.unlinkSync(file); } catch (e) {}
  }
}
function removeRoot() {
  const d = root && path.resolve(root);
  if (d && path.dirname(d) === tmp && path.basename(d).startsWith('${TEMP_ROOT_PREFIX}')) {
    try { fs.rmSync(d, { recursive: true, force: true, maxRetries: 3 }); } catch (e) {}
  }
}
const timer = setInterval(() => {
  if (alive(owner)) return;
  clearInterval(timer);
  sweep();
  removeRoot();
  process.exit(0);
}, 500);
`;

/** Create (or re-create, e.g. after a global teardown in watch mode) the temp root, and start the watchdog. */
function ensureProcessResources(): string {
  if (state.tempRoot === undefined || !fs.existsSync(state.tempRoot)) {
    state.tempRoot = createTempRoot({ owner: hostProcess.pid, ownerParent: hostProcess.ppid });
    if (state.watchdogPid !== undefined) {
      // the running watchdog knows the old root only
      try {
        hostProcess.kill(state.watchdogPid, 'SIGKILL');
      } catch {
        // gone
      }
      state.watchdogPid = undefined;
    }
  }
  if (!isWatchdog(state.watchdogPid)) startWatchdog(state.tempRoot);
  return state.tempRoot;
}

function isWatchdog(pid: number | undefined): boolean {
  if (pid === undefined || !isAlive(pid)) return false;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(WATCHDOG_MARKER);
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

function startWatchdog(tempRoot: string): void {
  const args = ['-e', WATCHDOG_SOURCE, WATCHDOG_MARKER, String(hostProcess.pid), PID_REGISTRY_DIR, tempRoot];
  const watchdog = spawn(process.execPath, args, {
    detached: true, // own process group: survives our death, ignores terminal signals meant for the test run
    stdio: 'ignore',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, // no NODE_OPTIONS etc. from the test process
  });
  watchdog.once('error', () => {
    state.watchdogPid = undefined;
  });
  watchdog.unref();
  state.watchdogPid = watchdog.pid;
}

// ---------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------

/** Reserve `count` distinct free loopback ports (bind port 0, read, close). */
async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve());
      });
      ports.push((server.address() as net.AddressInfo).port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map(s => new Promise<void>(resolve => s.close(() => resolve()))));
  }
}

function httpRequest(
  url: string,
  options: { method: 'GET' | 'POST'; body?: string; timeoutMs: number },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: options.method,
        agent: false,
        headers: {
          connection: 'close',
          ...(options.body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(options.body) }),
        },
      },
      res => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on('error', err => {
          clearTimeout(timer);
          reject(err);
        });
      },
    );
    const timer = setTimeout(
      () => req.destroy(new Error(`${options.method} ${url} timed out after ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    req.on('error', err => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(options.body);
  });
}

function delay(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}
