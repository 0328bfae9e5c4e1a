/**
 * Several sample-app processes (compiled, `dist/sample-app/main.js`) sharing one etcd, each with
 * a unique lock and state prefix so that test files sharing an etcd never see each other's keys.
 * Stop them with `stopAllSampleApps()` (also those still booting when another failed to start).
 */
import { randomBytes } from 'node:crypto';
import { startSampleApp, type SampleAppProcess } from '../../sample-app/demo/sample-app-process.js';
import { getJson } from '../../sample-app/demo/http-json.js';
import type { FencingReport } from '../../sample-app/state/fenced-store.js';

export interface Fleet {
  instances: SampleAppProcess[];
  urls: string[];
  lockPrefix: string;
  statePrefix: string;
  /** What each instance's fenced store refused or retried (its `/status`). */
  fencingReports(): Promise<FencingReport[]>;
}

export async function startFleet(
  count: number,
  etcdHosts: readonly string[],
  options: { name: string; lockTtl: number; env?: Record<string, string> },
): Promise<Fleet> {
  const id = `e2e-${options.name}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const lockPrefix = `${id}/locks/`;
  const statePrefix = `${id}/state/`;
  const instances = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      startSampleApp({ name: `${options.name}-${i + 1}`, etcdHosts, lockPrefix, statePrefix, lockTtl: options.lockTtl, env: options.env }),
    ),
  );
  return {
    instances,
    urls: instances.map(instance => instance.url),
    lockPrefix,
    statePrefix,
    fencingReports: () => Promise.all(instances.map(async instance => (await getJson(`${instance.url}/status`)).fencing as FencingReport)),
  };
}
