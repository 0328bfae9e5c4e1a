/**
 * The Go peer: etcd's own `concurrency.Mutex`, through bench/go (GOPATH mode, Debian's
 * golang-go + golang-etcd-server-dev). Built on demand into .bench/; absent Go or the etcd
 * sources (or with BENCH_SKIP=go), the Go rows are skipped with the reason.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { skipped, which } from './servers.js';

export interface GoHelper {
  binary?: string;
  version?: string;
  skipped?: string;
}

export function buildGoHelper(repoRoot: string): GoHelper {
  if (skipped('go')) return { skipped: 'BENCH_SKIP includes go' };
  const go = which('go');
  if (!go) return { skipped: 'Go is not installed (Debian: apt-get install golang-go golang-etcd-server-dev)' };
  const gopath = process.env.BENCH_GOPATH ?? '/usr/share/gocode';
  if (!fs.existsSync(path.join(gopath, 'src/go.etcd.io/etcd/clientv3/concurrency'))) {
    return { skipped: `etcd's Go client sources are missing from ${gopath} (Debian: apt-get install golang-etcd-server-dev)` };
  }
  const version = /go version (\S+)/.exec(spawnSync(go, ['version'], { encoding: 'utf8' }).stdout ?? '')?.[1];
  const outDir = path.join(repoRoot, '.bench');
  fs.mkdirSync(path.join(outDir, 'go-cache'), { recursive: true });
  const binary = path.join(outDir, 'mutexbench');
  const build = spawnSync(go, ['build', '-o', binary, './bench/go/'], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 240_000,
    env: {
      ...process.env,
      GOPATH: gopath,
      GO111MODULE: 'off',
      GOFLAGS: '',
      GOCACHE: path.join(outDir, 'go-cache'),
    },
  });
  if (build.status !== 0) {
    return { skipped: `building bench/go failed: ${(build.stderr || build.error?.message || '').trim().split('\n').slice(-3).join(' ')}` };
  }
  return { binary, version };
}
