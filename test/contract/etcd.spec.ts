import { EtcdLockClient } from '../../lib/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { lockClientContract } from './lock-client.contract.js';

let etcd: EtcdCluster | undefined;
afterAll(async () => {
  await etcd?.close();
});

lockClientContract('etcd', async () => {
  etcd = await startEtcd();
  const client = new EtcdLockClient({ hosts: etcd.endpoints, prefix: 'contract/', ttl: 2, waitTimeout: 5000 });
  await client.connect();
  return {
    client,
    // As etcd would on expiry: the lease goes, with every key on it. The session learns at its next renewal.
    loseLease: async () => {
      await client.etcd.leaseClient.leaseRevoke({ ID: BigInt(`0x${client.status().leaseId}`).toString() });
    },
    close: () => client.close(),
  };
});
