import { EtcdLockClient, EtcdUnavailableError, InvalidLockArgumentError } from '../../lib/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';

describe('acquisitions across a short etcd outage (real etcd)', () => {
  let etcd: EtcdCluster;
  let client: EtcdLockClient;
  /** The client's debug lines: each retry of a refused acquisition says how long it pauses. */
  const debug: string[] = [];

  beforeAll(async () => {
    etcd = await startEtcd();
    client = new EtcdLockClient({
      hosts: etcd.endpoints,
      prefix: 'blip/',
      ttl: 10,
      waitTimeout: 8000,
      dialTimeout: 5000,
      logger: { debug: message => debug.push(message), warn() {}, error() {} },
    });
    await client.connect();
  });
  afterAll(async () => {
    await client?.close();
    await etcd?.close();
  });

  it('rides through an etcd restart that fits in the wait budget', async () => {
    await etcd.members[0].kill();
    const acquiring = client.acquire('job');
    const outcome = acquiring.then(
      () => 'acquired',
      (e: Error) => e.name,
    );
    await etcd.members[0].restart();
    expect(await outcome).toBe('acquired');
    const lock = await acquiring;
    expect(lock.signal.aborted).toBe(false);
    await lock.release();
  });

  it('reports EtcdUnavailableError once the wait budget is spent, not before retrying', async () => {
    await etcd.members[0].kill();
    debug.length = 0;
    const started = performance.now();
    try {
      const error = await client.acquire('job', { waitTimeout: 800 }).catch(e => e);
      const elapsed = performance.now() - started;
      expect(error).toBeInstanceOf(EtcdUnavailableError);
      // It retried instead of failing on the first refusal, and gave up only when the next
      // backoff pause no longer fitted in the budget. (Not a time bound: on a loaded machine
      // each refused attempt costs more, so fewer pauses fit: 482 ms was seen at load 15.)
      const pauses = debug
        .map(line => /^acquiring "job": [\s\S]*; retrying in (\d+) ms$/.exec(line)?.[1])
        .filter(p => p !== undefined)
        .map(Number);
      expect(pauses.length).toBeGreaterThanOrEqual(1);
      const nextPause = Math.min(2 * pauses.at(-1)!, 1000);
      expect(elapsed + nextPause).toBeGreaterThanOrEqual(800);
      expect(elapsed).toBeGreaterThanOrEqual(pauses.reduce((a, b) => a + b, 0));
      expect(elapsed).toBeLessThan(800 + 1000);
    } finally {
      await etcd.members[0].restart();
    }
  });

  it('refuses unknown acquire options, and a waitTimeout on tryAcquire', async () => {
    await expect(client.acquire('job', { waitTimout: 10 } as never)).rejects.toThrow(
      new InvalidLockArgumentError('waitTimout', 'unknown option'),
    );
    await expect(client.tryAcquire('job', { waitTimeout: 10 } as never)).rejects.toThrow(
      new InvalidLockArgumentError('waitTimeout', 'tryAcquire never waits; use acquire() with a waitTimeout'),
    );
  });
});
