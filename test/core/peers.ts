/**
 * etcd's own lock clients as peers of ours, each a child process of the line under test:
 * `etcdctl lock` and a Go `concurrency.Mutex` (test/etcd-builds/cmd/mutex, built against the
 * line's go.etcd.io/etcd/client/v3; line 3.4 uses the 3.5 client, the oldest the proxy serves).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Etcd3 } from 'etcd3';
import { EtcdLockClient } from '../../lib/core/index.js';
import { ensureMutexPeer, selectedLine } from '../support/etcd-builds.js';
import { ETCD_LINE, spawnEtcdctl, startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { observer } from './helpers.js';

export interface InteropServer {
  etcd: EtcdCluster;
  /** Ours, TTL 2 s. */
  client: EtcdLockClient;
  /** A plain etcd3 client to read the queue and revoke leases with. */
  view: Etcd3;
}

/** One etcd for a describe block's interop tests, handed to `onReady` before they run; closed after them. */
export function interopServer(onReady: (server: InteropServer) => void): void {
  let server: InteropServer | undefined;
  beforeAll(async () => {
    const etcd = await startEtcd();
    const client = new EtcdLockClient({ hosts: etcd.endpoints, ttl: 2, waitTimeout: 10_000 });
    await client.connect();
    server = { etcd, client, view: observer(etcd.endpoints) };
    onReady(server);
  });
  afterAll(async () => {
    await server?.client.close();
    server?.view.close();
    await server?.etcd.close(); // also kills any etcdctl still running against it
  });
}

/** A peer process: its output so far, its exit, and a wait for a line of its stdout. */
export interface Peer {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly stdout: string;
  readonly stderr: string;
  /** The first stdout line matching `pattern` (waits for it; fails naming the peer's stderr). */
  line(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

function peer(child: ChildProcess, what: string): Peer {
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)));
  const match = (pattern: RegExp) =>
    stdout
      .split('\n')
      .map(l => pattern.exec(l))
      .find(m => m !== null);
  return {
    child,
    exited,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    async line(pattern: RegExp, timeoutMs = 5000) {
      await waitFor(() => match(pattern) !== undefined, { timeoutMs, message: () => `${what} prints ${pattern} (stderr: ${stderr})` });
      return match(pattern)!;
    },
  };
}

/** A running `etcdctl lock NAME`: it prints its key once it holds the lock; SIGTERM unlocks. */
export function etcdctlLock(endpoints: string[], name: string, extra: string[] = []): Peer & { held(timeoutMs?: number): Promise<string> } {
  const p = peer(spawnEtcdctl(endpoints, ['lock', name, ...extra]), `etcdctl lock ${name}`);
  return Object.assign(p, { held: async (timeoutMs?: number) => (await p.line(/^\S+$/, timeoutMs))[0] });
}

/** The line whose Go client the Mutex peer is built from. */
export const MUTEX_LINE = ETCD_LINE === 'custom' ? selectedLine() : ETCD_LINE;

/**
 * A Go `concurrency.Mutex` on NAME with its own session (TTL `ttl` s). It prints "lease <hex>",
 * then "locked <key> <revision>" once it holds; closing its stdin (or SIGTERM) unlocks and exits 0;
 * a failed Lock prints "lock failed: <error>" on stderr and exits 2. If the test process dies its
 * stdin closes, so it never outlives the test.
 */
export function goMutex(
  endpoints: string[],
  name: string,
  ttl = 60,
): Peer & { lease(): Promise<string>; held(): Promise<{ key: string; revision: bigint }>; unlock(): void } {
  const bin = ensureMutexPeer(MUTEX_LINE);
  const child = spawn(bin, [`-endpoints=${endpoints.join(',')}`, `-ttl=${ttl}`, name], { stdio: ['pipe', 'pipe', 'pipe'] });
  const p = peer(child, `Go Mutex ${name}`);
  return Object.assign(p, {
    lease: async () => (await p.line(/^lease ([0-9a-f]+)$/))[1]!,
    held: async () => {
      const [, key, revision] = await p.line(/^locked (\S+) (\d+)$/);
      return { key: key!, revision: BigInt(revision!) };
    },
    unlock: () => child.stdin!.end(),
  });
}
