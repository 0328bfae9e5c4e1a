import { spawnSync } from 'node:child_process';
import { ETCD_BIN, startEtcd, type EtcdCluster } from '../../test/support/etcd.js';

/** The etcd binary the harness runs: $ETCD_BIN, else /usr/bin/etcd, else etcd from PATH. */
export { ETCD_BIN };

/** What to run when etcd is missing (Debian / Ubuntu). */
export const ETCD_INSTALL_COMMAND = 'sudo apt-get install -y etcd-server';

/** True when {@link ETCD_BIN} runs. */
export function etcdInstalled(): boolean {
  const probe = spawnSync(ETCD_BIN, ['--version'], { stdio: 'ignore', timeout: 10_000 });
  return probe.error === undefined && probe.status === 0;
}

/**
 * A single-member etcd on free loopback ports with a temporary data dir. It reuses the test
 * harness's launcher, which also kills etcd and removes the data dir when this process exits,
 * and has a watchdog do so should this process be killed outright.
 */
export function startLocalEtcd(): Promise<EtcdCluster> {
  return startEtcd();
}
