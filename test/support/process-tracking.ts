/**
 * Every etcd / etcdctl the harness spawns is tracked so that none outlives the test process:
 *  (a) an exit hook on the real (host) process SIGKILLs them synchronously;
 *  (b) each PID is listed in the on-disk registry (pid-registry.ts) until it exits, for Jest's
 *      global setup / teardown to sweep;
 *  (c) a detached watchdog (etcd-watchdog.cjs) SIGKILLs them once the test process is gone,
 *      even when it was SIGKILLed and ran no hook at all.
 * All data dirs of a test process live under one temp root, removed by the same three.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { repoRoot } from './etcd-builds.js';
import {
  PID_REGISTRY_DIR,
  TEMP_ROOT_PREFIX,
  createTempRoot,
  isAlive,
  registerPid,
  unregisterPid,
  type RegistryEntry,
} from './pid-registry.js';

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

/** The real process: signals to children go through it, and its 'exit' event fires. */
export const hostProcess = resolveHostProcess();

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

/** Registers a freshly spawned etcd / etcdctl with all three safety nets; the child no longer keeps the process alive. */
export function track(child: ChildProcess, kind: RegistryEntry['kind'], dataDir?: string): void {
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

/** Sends `signal` (then SIGCONT when `sendCont`, for a paused child); resolves once the child has exited. */
export async function killChild(child: ChildProcess, signal: NodeJS.Signals, sendCont = false): Promise<void> {
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

/** SIGKILL every process this module has spawned and is still running; resolves once they exited. */
export async function killAllSpawned(): Promise<void> {
  await Promise.all([...liveChildren].map(child => killChild(child, 'SIGKILL')));
}

/** Found from the repository root, so that the compiled harness (dist/test/support) runs the same file. */
const WATCHDOG_FILE = path.join(repoRoot(path.dirname(fileURLToPath(import.meta.url))), 'test', 'support', 'etcd-watchdog.cjs');

/** Create (or re-create, e.g. after a global teardown in watch mode) the temp root, and start the watchdog. */
export function ensureProcessResources(): string {
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

/** The PID of this process' watchdog, when one is running. */
export function watchdogPid(): number | undefined {
  return isWatchdog(state.watchdogPid) ? state.watchdogPid : undefined;
}

function isWatchdog(pid: number | undefined): boolean {
  if (pid === undefined || !isAlive(pid)) return false;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(WATCHDOG_FILE);
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

function startWatchdog(tempRoot: string): void {
  const args = [WATCHDOG_FILE, String(hostProcess.pid), PID_REGISTRY_DIR, tempRoot, TEMP_ROOT_PREFIX];
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
