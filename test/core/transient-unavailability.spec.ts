import { EtcdLockClient, EtcdUnavailableError, InvalidLockArgumentError } from '../../lib/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';

describe('acquisitions across a short etcd outage (real etcd)', () => {
  let etcd: EtcdCluster;
  let client: EtcdLockClient;

  beforeAll(async () => {
    etcd = await startEtcd();
    client = new EtcdLockClient({ hosts: etcd.endpoints, prefix: 'blip/', ttl: 10, waitTimeout: 8000, dialTimeout: 5000 });
    await client.connect();
  });
  afterAll(async () => {
    await client?.close();
    await etcd?.close();
  });

  it('rides through an etcd restart that fits in the wait budget', async () => {
    await etcd.members[0].kill();
    const acquiring = client.acquire('job');
    const outcome = acquiring.then(() => 'acquired', (e: Error) => e.name);
    await etcd.members[0].restart();
    expect(await outcome).toBe('acquired');
    const lock = await acquiring;
    expect(lock.signal.aborted).toBe(false);
    await lock.release();
  });

  it('reports EtcdUnavailableError once the wait budget is spent, not before retrying', async () => {
    await etcd.members[0].kill();
    const started = performance.now();
    try {
      const error = await client.acquire('job', { waitTimeout: 800 }).catch(e => e);
      const elapsed = performance.now() - started;
      expect(error).toBeInstanceOf(EtcdUnavailableError);
      // It retried instead of failing on the first refusal: pauses of 50, 100 and 200 ms always fit
      // in the 800 ms budget; the next (400 ms) only if the refusals came back fast, so under load
      // it gives up at ~400 ms, not after 500 (seen on every etcd line).
      expect(elapsed).toBeGreaterThan(350);
      expect(elapsed).toBeLessThan(800 + 1000);
    } finally {
      await etcd.members[0].restart();
    }
  });

  it('refuses unknown acquire options, and a waitTimeout on tryAcquire', async () => {
    await expect(client.acquire('job', { waitTimout: 10 } as never)).rejects.toThrow(new InvalidLockArgumentError('waitTimout', 'unknown option'));
    await expect(client.tryAcquire('job', { waitTimeout: 10 } as never)).rejects.toThrow(
      new InvalidLockArgumentError('waitTimeout', 'tryAcquire never waits; use acquire() with a waitTimeout'),
    );
  });
});
