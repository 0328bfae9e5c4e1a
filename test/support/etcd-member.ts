/** One etcd member process: spawn, health, pause / resume / kill / restart, and its Raft status. */
import { spawn, type ChildProcess } from 'node:child_process';
import { CHILD_ENV, ETCD_BIN } from './etcd-binaries.js';
import { delay, httpRequest } from './loopback.js';
import { hostProcess, killChild, track } from './process-tracking.js';

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

const STDERR_TAIL_LINES = 40;

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

/** A member that did not come up; `bindFailure` marks a port taken meanwhile (worth a retry on other ports). */
export class EtcdStartError extends Error {
  constructor(
    message: string,
    readonly bindFailure: boolean,
  ) {
    super(message);
    this.name = 'EtcdStartError';
  }
}

export interface MemberStatus {
  memberId: string;
  leader: string;
  raftTerm: bigint;
}

export class Member implements EtcdMember {
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
