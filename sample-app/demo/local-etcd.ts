/**
 * The demo's etcd: $ETCD_BIN, else an etcd on PATH, else the pinned
 * etcd line the tests default to, built once from Go modules when Go is installed, else Debian's
 * etcd-server installed with apt-get when running as root on Debian. Otherwise the demo stops with
 * one line saying how to get etcd.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import type { EtcdCluster } from '../../test/support/etcd.js';
import { DEFAULT_ETCD_LINE, EtcdBuildError, ensureTool, findExecutable, goCommand, pinnedVersion } from '../../test/support/etcd-builds.js';
import { PROJECT_ROOT } from './project-paths.js';

export type EtcdChoice = { bin: string; how: string } | { missing: string };

const DEBIAN_ETCD = '/usr/bin/etcd';

function runs(bin: string): boolean {
  const probe = spawnSync(bin, ['--version'], { stdio: 'ignore', timeout: 10_000 });
  return probe.error === undefined && probe.status === 0;
}

/** Finds (or builds, or installs) an etcd for the demo; `log` tells of a build or an install first. */
export function obtainEtcd(log: (message: string) => void): EtcdChoice {
  const given = process.env.ETCD_BIN;
  if (given)
    return runs(given) ? { bin: given, how: '$ETCD_BIN' } : { missing: `ETCD_BIN=${given} does not run (\`${given} --version\` failed)` };
  const installed = findExecutable('etcd');
  if (installed && runs(installed)) return { bin: installed, how: 'installed' };

  const version = pinnedVersion(DEFAULT_ETCD_LINE, PROJECT_ROOT);
  if (goCommand()) {
    try {
      return {
        bin: ensureTool(DEFAULT_ETCD_LINE, 'server', { root: PROJECT_ROOT, onBuild: log }),
        how: `etcd ${version} built from Go modules (cached)`,
      };
    } catch (err) {
      if (!(err instanceof EtcdBuildError)) throw err;
      return { missing: `etcd is not installed and building it failed: ${err.message.split('\n').join(' ')}` };
    }
  }
  if (process.getuid?.() === 0 && fs.existsSync('/usr/bin/apt-get')) {
    log("etcd is not installed: installing Debian's etcd-server (apt-get)...");
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    const install = update.status === 0 ? spawnSync('apt-get', ['install', '-y', '-qq', 'etcd-server'], { stdio: 'inherit', env }) : update;
    if (install.status === 0 && runs(DEBIAN_ETCD)) return { bin: DEBIAN_ETCD, how: "Debian's etcd-server, just installed" };
    return { missing: 'etcd is not installed and `apt-get install etcd-server` failed (see above)' };
  }
  return {
    missing:
      `The demo needs etcd: install it (Debian/Ubuntu: sudo apt-get install -y etcd-server), or install Go 1.26+ ` +
      `(https://go.dev/dl/) and the demo builds etcd ${version} itself, or set ETCD_BIN to an etcd binary.`,
  };
}

/**
 * A single-member etcd of `bin` on free loopback ports with a temporary data dir. It reuses the
 * test harness's launcher (loaded only now, with ETCD_BIN set, so it builds nothing), which also
 * kills etcd and removes the data dir when this process exits, and has a watchdog do so should
 * this process be killed outright.
 */
export async function startLocalEtcd(bin: string): Promise<EtcdCluster> {
  process.env.ETCD_BIN = bin;
  const { startEtcd } = await import('../../test/support/etcd.js');
  return startEtcd();
}
