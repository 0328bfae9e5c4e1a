/**
 * The etcd under test: which binaries, the environment and the flags every member starts with.
 */
import { spawnSync } from 'node:child_process';
import { etcdChildEnv, resolveEtcdBinaries, type EtcdLine } from './etcd-builds.js';

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
export const CHILD_ENV: NodeJS.ProcessEnv = etcdChildEnv();

/** Raft timing used by the harness: min lease TTL = ceil(1.5 × 500 ms) = 1 s. */
export const HEARTBEAT_INTERVAL_MS = 50;
export const ELECTION_TIMEOUT_MS = 500;

let noFsyncSupported: boolean | undefined;

/** etcd 3.4.23 accepts `--unsafe-no-fsync` but does not list it in `etcd --help`; probe the flag parser. */
function supportsUnsafeNoFsync(): boolean {
  if (noFsyncSupported === undefined) {
    const probe = spawnSync(ETCD_BIN, ['--unsafe-no-fsync', '--version'], { stdio: 'ignore', timeout: 10_000, env: CHILD_ENV });
    noFsyncSupported = probe.status === 0;
  }
  return noFsyncSupported;
}

/** The flags of every member, before the caller's `extraArgs` (a later flag wins). */
export function defaultFlags(): string[] {
  return [
    `--heartbeat-interval=${HEARTBEAT_INTERVAL_MS}`,
    `--election-timeout=${ELECTION_TIMEOUT_MS}`,
    ...(supportsUnsafeNoFsync() ? ['--unsafe-no-fsync'] : []),
    '--logger=zap',
    '--log-outputs=stderr',
    '--log-level=error',
  ];
}
