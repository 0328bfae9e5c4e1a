/**
 * Jest globalTeardown: kill every etcd / etcdctl process still registered by
 * this Jest run (spawned by this process or one of its workers) or by a test
 * process that no longer exists, and clear those registry entries.
 */
import type * as PidRegistry from './pid-registry.js';

export default async function globalTeardown(): Promise<void> {
  // See global-setup.ts: loaded through CommonJS require(), so require the .ts source.
  const { isAlive, sweepRegistry } = require('./pid-registry.ts') as typeof PidRegistry;
  const self = process.pid;
  const { killed } = sweepRegistry(entry => entry.owner === self || entry.ownerParent === self || !isAlive(entry.owner));
  if (killed.length > 0) {
    console.warn(`[etcd harness] killed ${killed.length} leftover etcd/etcdctl process(es): ${killed.join(', ')}`);
  }
}
