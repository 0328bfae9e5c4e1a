/**
 * Fault suite, bad input on a 3-member cluster. test/core/bad-input.spec.ts already proves every
 * argument check (empty / over-long names, TTL 0, -1, 1.5, NaN, below the server minimum, wrong
 * and missing credentials, closed port, paused etcd) against a single etcd. Added here: the same
 * refusals leave NOTHING in a 3-member cluster (no key, no lease, no revision), colliding-looking
 * names stay apart across members, and a client given three dead endpoints fails typed and in time.
 */
import { jest } from '@jest/globals';
import type { Etcd3 } from 'etcd3';
import { EtcdLockClient, EtcdUnavailableError, InvalidLockArgumentError, MAX_KEY_BYTES } from '../../lib/core/index.js';
import { startEtcdCluster, type EtcdCluster } from '../support/etcd.js';
import { currentRevision, keysAt, liveLeases, observer, report } from './helpers.js';

jest.setTimeout(30_000);

describe('fault suite: bad input (3-member cluster)', () => {
  let cluster: EtcdCluster;
  let view: Etcd3;

  beforeAll(async () => {
    cluster = await startEtcdCluster(3);
    view = observer(cluster.endpoints);
  });

  afterAll(async () => {
    view?.close();
    await cluster?.close();
  });

  it('refused arguments write nothing; colliding-looking names are distinct locks; three dead endpoints fail typed within dialTimeout', async () => {
    const prefix = 'bad/';
    const longest = MAX_KEY_BYTES - prefix.length - '/'.length - 40;
    const client = new EtcdLockClient({ hosts: cluster.endpoints, prefix, ttl: 2 });
    const refusals: Array<[string, () => Promise<unknown>]> = [
      ['empty name', () => client.acquire('')],
      ['huge name', () => client.acquire('x'.repeat(longest + 1))],
      ['empty list', () => client.acquire([])],
      ['ttl 0', () => client.acquire('r', { ttl: 0 })],
      ['ttl -1', () => client.acquire('r', { ttl: -1 })],
      ['ttl 1.5', () => client.acquire('r', { ttl: 1.5 })],
      ['waitTimeout -1', () => client.acquire('r', { waitTimeout: -1 })],
      ['tryAcquire with a waitTimeout', () => client.tryAcquire('r', { waitTimeout: 5 } as never)],
    ];
    const revisionBefore = await currentRevision(view);
    const outcomes: string[] = [];
    for (const [name, call] of refusals) {
      const err = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      outcomes.push(`${name}: ${err instanceof InvalidLockArgumentError ? `InvalidLockArgumentError(${err.field})` : String(err)}`);
    }
    const typed = outcomes.filter(o => o.includes('InvalidLockArgumentError')).length;
    // Nothing was written by the refusals, not even a lease (the client never connected).
    const revisionAfterRefusals = await currentRevision(view);
    const leasesAfterRefusals = (await liveLeases(view)).length;

    // Names that look alike are different locks, held at once by clients on different members.
    const names = ['a/b', 'a%2Fb', 'a', 'a/', '%', 'é', 'e\u0301'];
    const holders = names.map((_, i) => new EtcdLockClient({ hosts: [cluster.endpoints[i % 3]!], prefix, ttl: 2 }));
    const locks = await Promise.all(names.map((name, i) => holders[i]!.acquire(name, { waitTimeout: 0 })));
    const distinctKeys = new Set(locks.map(l => l.key)).size;
    const longestOk = await client.acquire('y'.repeat(longest));
    await longestOk.release();
    await Promise.all(locks.map(l => l.release()));
    await Promise.all([...holders, client].map(c => c.close()));
    const leftoverKeys = (await keysAt(view, prefix)).length;
    const leftoverLeases = (await liveLeases(view)).length;

    // No etcd at all: every member is down.
    const dead = new EtcdLockClient({ hosts: cluster.endpoints, prefix, ttl: 2, dialTimeout: 1500, requestTimeout: 1500 });
    await Promise.all(cluster.members.map(m => m.kill('SIGKILL')));
    const started = performance.now();
    const noEtcd = await dead.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    const noEtcdMs = performance.now() - started;
    await dead.close();

    report({
      scenario: 'bad input (3-member cluster)',
      bound: 'typed error, nothing left in etcd',
      figures: {
        refusals: refusals.length,
        typedRefusals: typed,
        revisionsWrittenByRefusals: Number(revisionAfterRefusals - revisionBefore),
        leasesAfterRefusals,
        lookalikeNames: names.length,
        distinctKeys,
        leftoverKeys,
        leftoverLeases,
        noEtcdError: noEtcd instanceof Error ? noEtcd.name : 'none',
        noEtcdFailedAfterMs: noEtcdMs,
      },
      pass:
        typed === refusals.length &&
        revisionAfterRefusals === revisionBefore &&
        leasesAfterRefusals === 0 &&
        distinctKeys === names.length &&
        leftoverKeys === 0 &&
        leftoverLeases === 0 &&
        noEtcd instanceof EtcdUnavailableError &&
        noEtcdMs < 1500 + 1000,
    });
    expect(outcomes.filter(o => !o.includes('InvalidLockArgumentError'))).toEqual([]);
    expect(revisionAfterRefusals).toBe(revisionBefore);
    expect(leasesAfterRefusals).toBe(0);
    expect(distinctKeys).toBe(names.length);
    expect(leftoverKeys).toBe(0);
    expect(leftoverLeases).toBe(0);
    expect(noEtcd).toBeInstanceOf(EtcdUnavailableError);
    expect(noEtcdMs).toBeLessThan(1500 + 1000);
  });
});
