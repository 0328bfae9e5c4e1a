/**
 * Concurrent acquisitions of one resource inside ONE process (one client, one lease)
 * each queue like any others: never two holders at once. And resource names are encoded so that
 * `a` and `a/b`, or `a%2Fb` and `a/b`, are distinct locks.
 */
import type { Etcd3 } from 'etcd3';
import { EtcdLockClient, decodeResource, encodeResource } from '../../lib/core/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { observer, readQueue } from './helpers.js';

describe('queueing inside one process, and resource names', () => {
  let etcd: EtcdCluster;
  let client: EtcdLockClient;
  let other: EtcdLockClient;
  let view: Etcd3;

  beforeAll(async () => {
    etcd = await startEtcd();
    view = observer(etcd.endpoints);
    client = new EtcdLockClient({ hosts: etcd.endpoints, ttl: 5, waitTimeout: 10_000 });
    other = new EtcdLockClient({ hosts: etcd.endpoints, ttl: 5, waitTimeout: 10_000 });
    await Promise.all([client.connect(), other.connect()]);
  });

  afterAll(async () => {
    await client?.close();
    await other?.close();
    view?.close();
    await etcd?.close();
  });

  it('concurrent acquisitions on one client each queue (own key, FIFO), never two holders at once', async () => {
    const n = 12;
    const first = await client.acquire('shared');
    let inside = 0;
    let maxInside = 0;
    const grants: bigint[] = [];
    const tasks = Array.from({ length: n }, () =>
      client.acquire('shared').then(async lock => {
        inside++;
        maxInside = Math.max(maxInside, inside);
        grants.push(lock.fencingToken);
        // Give a wrongly granted second holder the time to show up.
        await new Promise(resolve => setTimeout(resolve, 5));
        lock.throwIfLost();
        inside--;
        await lock.release();
      }),
    );
    // While the first holds, every one of them has its own key in the queue, on the same lease.
    await waitFor(async () => (await readQueue(view, 'locks/shared/')).length === n + 1, { message: 'all queued' });
    const queue = await readQueue(view, 'locks/shared/');
    expect(new Set(queue.map(e => e.key)).size).toBe(n + 1);
    expect(new Set(queue.map(e => e.lease))).toEqual(new Set([first.leaseId]));
    expect(inside).toBe(0);

    await first.release();
    await Promise.all(tasks);
    expect(maxInside).toBe(1);
    expect(grants).toHaveLength(n);
    // Granted in create-revision (queue) order.
    expect(grants).toEqual(queue.slice(1).map(e => e.createRevision));
    expect(await readQueue(view, 'locks/shared/')).toEqual([]);
  });

  it('withLock on one client serialises its callbacks', async () => {
    let inside = 0;
    let maxInside = 0;
    let counter = 0;
    await Promise.all(
      Array.from({ length: 10 }, () =>
        client.withLock('with-lock', async () => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          const read = counter;
          await new Promise(resolve => setTimeout(resolve, 2));
          counter = read + 1;
          inside--;
        }),
      ),
    );
    expect(maxInside).toBe(1);
    expect(counter).toBe(10);
  });

  it('lists of resources taken concurrently in opposite orders do not deadlock', async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        (i % 2 === 0 ? client : other).withLock(i % 2 === 0 ? ['x', 'y'] : ['y', 'x'], set => set.resources, { waitTimeout: 5000 }),
      ),
    );
    for (const resources of results) expect(resources).toEqual(['x', 'y']);
  });

  describe('names', () => {
    /** Holds `held`, then checks whether `probe` can be taken by another client at the same time. */
    async function excludes(held: string, probe: string): Promise<boolean> {
      const lock = await client.acquire(held);
      try {
        const probed = await other.tryAcquire(probe);
        await probed?.release();
        return probed === null;
      } finally {
        await lock.release();
      }
    }

    it.each([
      ['a', 'a'],
      ['a/b', 'a/b'],
      ['a%2Fb', 'a%2Fb'],
      ['ünï/cødé ✓', 'ünï/cødé ✓'],
    ])('%s excludes %s (the same name)', async (held, probe) => {
      expect(await excludes(held, probe)).toBe(true);
    });

    it.each([
      ['a', 'a/b'],
      ['a/b', 'a'],
      ['a%2Fb', 'a/b'],
      ['a/b', 'a%2Fb'],
      ['a', 'ab'],
      ['a', 'a/'],
      ['a/', 'a//'],
      ['%', '%25'],
      ['A', 'a'],
    ])('%s does not exclude %s', async (held, probe) => {
      expect(await excludes(held, probe)).toBe(false);
    });

    it('keys: the resource is encoded (/ and % escaped) and decodes back', async () => {
      const cases: Array<[string, string]> = [
        ['a', 'a'],
        ['a/b', 'a%2Fb'],
        ['a%2Fb', 'a%252Fb'],
        ['%', '%25'],
        ['ünï/cødé ✓', 'ünï%2Fcødé ✓'],
      ];
      for (const [resource, encoded] of cases) {
        const lock = await client.acquire(resource);
        try {
          expect(lock.key).toBe(`locks/${encoded}/${lock.leaseId}_${lock.key.split('_').at(-1)}`);
          expect(encodeResource(resource)).toBe(encoded);
          expect(decodeResource(encoded)).toBe(resource);
          // Exactly one key, directly under the resource's prefix: nothing nested.
          expect((await readQueue(view, `locks/${encoded}/`)).map(e => e.key)).toEqual([lock.key]);
          expect(lock.key.slice(`locks/${encoded}/`.length)).not.toContain('/');
        } finally {
          await lock.release();
        }
      }
    });

    it('a custom prefix keeps locks apart from the default one', async () => {
      const prefixed = new EtcdLockClient({ hosts: etcd.endpoints, ttl: 5, prefix: 'app1/locks/' });
      try {
        const lock = await client.acquire('p');
        const mine = await prefixed.tryAcquire('p');
        expect(mine).not.toBeNull();
        expect(mine!.key.startsWith('app1/locks/p/')).toBe(true);
        await mine!.release();
        await lock.release();
      } finally {
        await prefixed.close();
      }
    });
  });
});
