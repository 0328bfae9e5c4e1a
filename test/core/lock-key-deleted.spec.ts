import { EtcdLockClient, LockLostError } from '../../lib/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';

describe('a held lock whose key is deleted externally (real etcd)', () => {
  let etcd: EtcdCluster;
  let client: EtcdLockClient;

  beforeAll(async () => {
    etcd = await startEtcd();
    client = new EtcdLockClient({ hosts: etcd.endpoints, prefix: 'deleted/', ttl: 3 });
    await client.connect();
  });
  afterAll(async () => {
    await client?.close();
    await etcd?.close();
  });

  it('aborts the holder within one renewal interval, and leaves other locks alone', async () => {
    const victim = await client.acquire('victim');
    const bystander = await client.acquire('bystander');
    await client.etcd.delete().key(victim.key);
    const deletedAt = performance.now();
    await waitFor(() => victim.signal.aborted, { timeoutMs: 3000, message: 'holder notices its key is gone' });
    const noticedMs = performance.now() - deletedAt;
    console.log(`external deletion noticed after ${noticedMs.toFixed(0)} ms (renewal every ${(3000 / 3).toFixed(0)} ms)`);
    expect(victim.signal.reason).toBeInstanceOf(LockLostError);
    expect(victim.signal.reason.message).toBe('Lock "victim" lost: its key was deleted from etcd');
    expect(noticedMs).toBeLessThan(1000 + 500);
    expect(bystander.signal.aborted).toBe(false);
    await Promise.all([victim.release(), bystander.release()]);
  });
});
