/**
 * The Go peer: etcd's own `concurrency.Mutex`, through bench/go, built with Go modules against
 * go.etcd.io/etcd/client/v3 of the benchmarked etcd line (3.4: the 3.5 client, the oldest the Go
 * module proxy serves), cached with the etcd builds (test/support/etcd-builds.ts). Absent Go (or
 * with BENCH_SKIP=go), the Go rows are skipped with the reason.
 */
import { spawnSync } from 'node:child_process';
import { clientLine, EtcdBuildError, ensureMutexPeer, goCommand, pinnedVersion, selectedLine } from '../../test/support/etcd-builds.js';
import { skipped } from './servers.js';

export interface GoHelper {
  binary?: string;
  /** The Go toolchain and the etcd client it was built with, e.g. "go1.26.8, client/v3 3.6.16". */
  version?: string;
  skipped?: string;
}

export function buildGoHelper(repoRoot: string): GoHelper {
  if (skipped('go')) return { skipped: 'BENCH_SKIP includes go' };
  const go = goCommand();
  if (!go) return { skipped: 'Go is not installed (Go 1.26+ at /usr/local/go, or on PATH)' };
  const line = selectedLine(); // the benchmarked line (--etcd sets ETCD_VERSION)
  try {
    const binary = ensureMutexPeer(line, { tool: 'mutexbench', root: repoRoot });
    const goVersion = /go version (\S+)/.exec(spawnSync(go, ['version'], { encoding: 'utf8' }).stdout ?? '')?.[1];
    return { binary, version: `${goVersion}, client/v3 ${pinnedVersion(clientLine(line), repoRoot)}` };
  } catch (err) {
    if (err instanceof EtcdBuildError) return { skipped: err.message.split('\n').slice(0, 4).join(' ') };
    throw err;
  }
}
