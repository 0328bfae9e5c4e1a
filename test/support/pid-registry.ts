/**
 * On-disk registry of the etcd / etcdctl processes started by the test harness.
 *
 * Every spawned process is written to `PID_REGISTRY_DIR/<pid>` (JSON: who owns
 * it, what it is) and the file is removed once the process exits. Whatever is
 * still listed after a crash is swept by the per-process watchdog (see
 * process-tracking.ts) and by Jest's global setup / teardown.
 *
 * This module must stay free of Jest globals: the global setup / teardown load it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const PID_REGISTRY_DIR = path.join(os.tmpdir(), 'nest-etcd-lock-pids');

/**
 * Each test process keeps all its etcd data dirs under one temp root,
 * `os.tmpdir()/nest-etcd-lock-data-<ownerPid>-XXXXXX/`, holding an OWNER_FILE,
 * so that leftovers can be removed wholesale when the owner is gone.
 */
export const TEMP_ROOT_PREFIX = 'nest-etcd-lock-data-';
export const OWNER_FILE = 'owner.json';

export interface Owner {
  /** PID of the Node process that spawned it (a Jest worker, or Jest itself when running in band). */
  owner: number;
  /** Parent PID of `owner` (the Jest main process when `owner` is a worker). */
  ownerParent: number;
}

export interface RegistryEntry extends Owner {
  /** PID of the etcd / etcdctl process (also the file name). */
  pid: number;
  kind: 'etcd' | 'etcdctl';
  /** etcd data dir (informational). */
  dataDir?: string;
  startedAt: string;
}

export function registerPid(entry: RegistryEntry): void {
  fs.mkdirSync(PID_REGISTRY_DIR, { recursive: true });
  const file = path.join(PID_REGISTRY_DIR, String(entry.pid));
  const tmp = path.join(PID_REGISTRY_DIR, `.${entry.pid}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, JSON.stringify(entry));
  fs.renameSync(tmp, file); // atomic: readers never see a half-written entry
}

export function unregisterPid(pid: number): void {
  try {
    fs.unlinkSync(path.join(PID_REGISTRY_DIR, String(pid)));
  } catch {
    // already gone
  }
}

/** All entries; files that cannot be parsed yield an entry with owner -1 (treated as orphaned). */
export function readRegistry(): RegistryEntry[] {
  let names: string[];
  try {
    names = fs.readdirSync(PID_REGISTRY_DIR);
  } catch {
    return [];
  }
  const entries: RegistryEntry[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    try {
      const parsed = JSON.parse(fs.readFileSync(path.join(PID_REGISTRY_DIR, name), 'utf8')) as RegistryEntry;
      entries.push({ ...parsed, pid });
    } catch {
      entries.push({ pid, owner: -1, ownerParent: -1, kind: 'etcd', startedAt: '' });
    }
  }
  return entries;
}

/** True when the PID exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

/** True when /proc/<pid>/cmdline shows an etcd or etcdctl binary (guards against recycled PIDs). */
export function isEtcdProcess(pid: number): boolean {
  try {
    const argv0 = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
    return path.basename(argv0).startsWith('etcd');
  } catch {
    return false;
  }
}

/** Create this process' temp root (see TEMP_ROOT_PREFIX). */
export function createTempRoot(owner: Owner): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${TEMP_ROOT_PREFIX}${owner.owner}-`));
  const tmp = path.join(dir, `.${OWNER_FILE}.tmp`);
  fs.writeFileSync(tmp, JSON.stringify({ owner: owner.owner, ownerParent: owner.ownerParent }));
  fs.renameSync(tmp, path.join(dir, OWNER_FILE));
  return dir;
}

/** True only for a temp root the harness created (never deletes anything else). */
export function isTempRoot(dir: string): boolean {
  const resolved = path.resolve(dir);
  return (
    path.dirname(resolved) === path.resolve(os.tmpdir()) &&
    path.basename(resolved).startsWith(TEMP_ROOT_PREFIX) &&
    fs.existsSync(path.join(resolved, OWNER_FILE))
  );
}

export function listTempRoots(): Array<Owner & { dir: string }> {
  let names: string[];
  try {
    names = fs.readdirSync(os.tmpdir());
  } catch {
    return [];
  }
  const roots: Array<Owner & { dir: string }> = [];
  for (const name of names) {
    if (!name.startsWith(TEMP_ROOT_PREFIX)) continue;
    const dir = path.join(os.tmpdir(), name);
    try {
      const owner = JSON.parse(fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8')) as Owner;
      roots.push({ dir, owner: owner.owner, ownerParent: owner.ownerParent });
    } catch {
      // not (yet) a complete temp root
    }
  }
  return roots;
}

export interface SweepResult {
  killed: number[];
  removed: number[];
  kept: number[];
  removedDirs: string[];
}

/**
 * For every registry entry whose owner is selected by `select`: SIGKILL the
 * process (only if it still is an etcd / etcdctl process) and remove the entry.
 * Then remove every temp root (data dirs) whose owner is selected.
 * Whatever is not selected is left alone (its owner cleans it up).
 */
export function sweepRegistry(select: (owner: Owner) => boolean): SweepResult {
  const result: SweepResult = { killed: [], removed: [], kept: [], removedDirs: [] };
  for (const entry of readRegistry()) {
    if (!select(entry)) {
      result.kept.push(entry.pid);
      continue;
    }
    if (isAlive(entry.pid) && isEtcdProcess(entry.pid)) {
      try {
        process.kill(entry.pid, 'SIGKILL');
        result.killed.push(entry.pid);
      } catch {
        // raced with its exit
      }
    }
    unregisterPid(entry.pid);
    result.removed.push(entry.pid);
  }
  for (const root of listTempRoots()) {
    if (!select(root) || !isTempRoot(root.dir)) continue;
    try {
      fs.rmSync(root.dir, { recursive: true, force: true, maxRetries: 3 });
      result.removedDirs.push(root.dir);
    } catch {
      // next time
    }
  }
  return result;
}
