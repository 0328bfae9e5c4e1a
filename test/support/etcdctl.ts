/** etcdctl against harness members: one-shot (async or sync), long-running, and turning auth on. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { CHILD_ENV, ETCDCTL_BIN } from './etcd-binaries.js';
import { killChild, track } from './process-tracking.js';

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

/** Long-running etcdctl processes still running, with the endpoints each talks to. */
const spawnedEtcdctl = new Set<{ child: ChildProcess; endpoints: string[] }>();

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

/** SIGKILLs every spawnEtcdctl() process that talks to one of `endpoints`; resolves once they exited. */
export async function killEtcdctlOf(endpoints: readonly string[]): Promise<void> {
  const wanted = new Set(endpoints);
  const clients = [...spawnedEtcdctl].filter(e => e.endpoints.some(u => wanted.has(u)));
  await Promise.all(clients.map(e => killChild(e.child, 'SIGKILL')));
}
