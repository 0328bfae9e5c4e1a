/**
 * Test harness that runs REAL etcd processes (never a mock) on free loopback ports.
 *
 *   const cluster = await startEtcdCluster(3);
 *   try { ... cluster.endpoints ... } finally { await cluster.close(); }
 *
 * The entry point of the harness; its parts, one role a file:
 * - etcd-cluster.ts: startEtcd / startEtcdCluster, leader(), close();
 * - etcd-member.ts: one member process (kill, pause, restart) and its /health;
 * - etcdctl.ts: etcdctl runs, long-running etcdctl, enableAuth;
 * - etcd-binaries.ts: which etcd is under test, its environment and flags;
 * - process-tracking.ts (+ pid-registry.ts, etcd-watchdog.cjs): no process is left behind, even
 *   when the test process is SIGKILLed;
 * - loopback.ts: free ports, HTTP to the gateway.
 */
export { ETCD_BIN, ETCD_LINE, ETCDCTL_BIN, ELECTION_TIMEOUT_MS, HEARTBEAT_INTERVAL_MS } from './etcd-binaries.js';
export { startEtcd, startEtcdCluster, type EtcdCluster, type StartEtcdOptions } from './etcd-cluster.js';
export { isHealthy, requestHealth, type EtcdMember } from './etcd-member.js';
export { enableAuth, etcdctl, etcdctlSync, spawnEtcdctl, type EtcdctlOptions, type EtcdctlResult } from './etcdctl.js';
export { killAllSpawned } from './process-tracking.js';
