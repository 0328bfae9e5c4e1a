/**
 * The servers a benchmark run talks to, all on loopback, all started and stopped by the run:
 * etcd through the test harness (real etcd, free ports, no process left behind; the line is
 * `--etcd 3.4|3.5|3.6|3.7`, default 3.6, built from Go modules like the tests'), and Redis
 * (only when `redis-server` is installed).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
// Before the harness: it reads the line (--etcd / ETCD_VERSION) when it loads.
import './etcd-line.js';
import { ETCD_BIN, startEtcd, type EtcdCluster } from '../../test/support/etcd.js';
import { etcdChildEnv } from '../../test/support/etcd-builds.js';

export interface EtcdServer {
  endpoint: string;
  fsync: boolean;
  cluster: EtcdCluster;
}

/**
 * One etcd member. The harness passes `--unsafe-no-fsync` for fast tests; a later flag wins in
 * etcd's flag parser, so `fsync: true` turns fsync back on (what a production etcd does).
 */
export async function startBenchEtcd(fsync: boolean): Promise<EtcdServer> {
  const cluster = await startEtcd({
    extraArgs: [`--unsafe-no-fsync=${fsync ? 'false' : 'true'}`, '--quota-backend-bytes=8589934592'],
  });
  return { endpoint: cluster.endpoints[0], fsync, cluster };
}

export function etcdVersion(): string {
  const out = spawnSync(ETCD_BIN, ['--version'], { encoding: 'utf8', env: etcdChildEnv() });
  return /etcd Version: (\S+)/.exec(out.stdout ?? '')?.[1] ?? 'unknown';
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>(resolve => server.close(() => resolve()));
  return port;
}

/** BENCH_SKIP=go,redis leaves those peers out, as on a machine without them. */
export function skipped(peer: 'go' | 'redis'): boolean {
  return (process.env.BENCH_SKIP ?? '')
    .split(',')
    .map(s => s.trim())
    .includes(peer);
}

/** The path of an executable on PATH (or in /usr/bin, /usr/local/bin), if any. */
export function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/bin', '/usr/local/bin', '/usr/lib/go/bin'];
  for (const dir of dirs) {
    const candidate = `${dir}/${name}`;
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

export interface RedisServer {
  port: number;
  version: string;
  close(): Promise<void>;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/**
 * A throw-away redis-server on a free loopback port, in memory only (no RDB, no AOF): the
 * fastest Redis there is, which favours the Redis rows. Resolves undefined when not installed.
 */
export async function startRedis(): Promise<RedisServer | undefined> {
  const bin = skipped('redis') ? undefined : which('redis-server');
  if (!bin) return undefined;
  const version = /v=(\S+)/.exec(spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout ?? '')?.[1] ?? 'unknown';
  const port = await freePort();
  const child = spawn(
    bin,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'yes'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.add(child);
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()));
  child.once('exit', () => children.delete(child));
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${output.slice(-500)}`);
    if (await canConnect(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not start: ${output.slice(-500)}`);
    }
    await new Promise(r => setTimeout(r, 50));
  }
  return {
    port,
    version,
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
