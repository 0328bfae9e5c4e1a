/**
 * Jest globalSetup: kill etcd / etcdctl processes left behind by earlier test
 * runs whose owning test process is gone (e.g. a worker that was SIGKILLed
 * before its watchdog could act), and clear their registry entries.
 *
 * Entries owned by a live process belong to a concurrently running Jest and
 * are left alone.
 *
 * Then make sure the etcd under test (and the Go Mutex peer of its line) is built, so that no
 * test pays a build of minutes inside its timeout.
 */
import type * as EtcdBuilds from './etcd-builds.js';
import type * as PidRegistry from './pid-registry.js';

/**
 * Jest always loads global setup/teardown modules through CommonJS require()
 * plus a transform hook (never as ESM), where moduleNameMapper does not apply:
 * './pid-registry.js' does not exist on disk, so require the .ts source.
 */
function loadPidRegistry(): typeof PidRegistry {
  return require('./pid-registry.ts') as typeof PidRegistry;
}

function loadEtcdBuilds(): typeof EtcdBuilds {
  return require('./etcd-builds.ts') as typeof EtcdBuilds;
}

export default async function globalSetup(): Promise<void> {
  const { isAlive, sweepRegistry } = loadPidRegistry();
  const { killed } = sweepRegistry(entry => !isAlive(entry.owner));
  if (killed.length > 0) {
    console.warn(`[etcd harness] killed ${killed.length} orphaned etcd/etcdctl process(es): ${killed.join(', ')}`);
  }

  const { resolveEtcdBinaries, ensureMutexPeer, selectedLine, versionLine } = loadEtcdBuilds();
  const onBuild = (message: string) => console.log(message);
  const { etcd } = resolveEtcdBinaries(process.env, { onBuild });
  ensureMutexPeer(selectedLine(), { onBuild });
  // The log of every run names the server it tested.
  console.log(`\n${versionLine(etcd)} (${etcd})`);
}
