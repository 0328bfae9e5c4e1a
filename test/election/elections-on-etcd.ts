/**
 * The setup the election specs share: a real etcd, one connected client with elections on it, and
 * a plain etcd3 view to read the election keys with.
 */
import type { Etcd3 } from 'etcd3';
import { EtcdElections, EtcdLockClient } from '../../lib/core/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { observer } from '../core/helpers.js';

export interface ElectionsOnEtcd {
  etcd: EtcdCluster;
  client: EtcdLockClient;
  elections: EtcdElections;
  view: Etcd3;
  /** Closes the client, the view and etcd (which kills any etcdctl still running against it). */
  close(): Promise<void>;
}

/** Starts etcd and connects a client whose lease lives `ttlS` seconds. */
export async function startElectionsOnEtcd(ttlS: number): Promise<ElectionsOnEtcd> {
  const etcd = await startEtcd();
  const client = new EtcdLockClient({ hosts: etcd.endpoints, ttl: ttlS });
  const view = observer(etcd.endpoints);
  const close = async () => {
    await client.close();
    view.close();
    await etcd.close();
  };
  try {
    await client.connect();
  } catch (err) {
    await close();
    throw err;
  }
  return { etcd, client, elections: new EtcdElections(client), view, close };
}
