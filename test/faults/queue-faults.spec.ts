/**
 * Fault suite, faults of the QUEUE on a 3-member cluster: a waiter whose lease is revoked while it
 * waits, and a compaction of etcd's history while waiters wait (their watches started before the
 * compacted revision), also with a waiter whose watch stream breaks at that moment.
 */
import { jest } from '@jest/globals';
import type { Etcd3 } from 'etcd3';
import { EtcdLockClient, LockLostError, type LockHandle } from '../../lib/core/index.js';
import { startEtcdCluster, type EtcdCluster } from '../support/etcd.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';
import { currentRevision, delay, keysAt, observer, report, reportRevokedWaiters, withTimeout, type RevokedWaiterRound } from './helpers.js';

jest.setTimeout(60_000);

interface Outcome {
  name: string;
  lock?: LockHandle & { grantedAt?: number };
  error?: unknown;
  at: number;
}

describe('fault suite: queue faults (3-member cluster)', () => {
  let cluster: EtcdCluster;
  let view: Etcd3;
  const clients: EtcdLockClient[] = [];
  let proxies: TcpProxy[] = [];

  /** A client talking to one member only. */
  const on = (member: number, prefix: string, ttl = 5) => {
    const client = new EtcdLockClient({ hosts: [cluster.endpoints[member]!], prefix, ttl, requestTimeout: 2000 });
    clients.push(client);
    return client;
  };
  const outcome = (name: string, promise: Promise<LockHandle>): Promise<Outcome> =>
    promise.then(
      lock => ({ name, lock, at: performance.now() }),
      (error: unknown) => ({ name, error, at: performance.now() }),
    );
  const queueLength = async (prefix: string, count: number) => {
    let seen: string[] = [];
    await waitFor(
      async () => {
        seen = (await keysAt(view, prefix)).map(k => k.key);
        return seen.length === count;
      },
      { timeoutMs: 10_000, message: () => `${count} keys under ${prefix} (have ${JSON.stringify(seen)})` },
    );
  };

  beforeAll(async () => {
    cluster = await startEtcdCluster(3);
    view = observer(cluster.endpoints);
  });

  afterAll(async () => {
    for (const proxy of proxies) proxy.setMode('pass');
    await Promise.all(clients.map(c => c.close().catch(() => undefined)));
    view?.close();
    await Promise.all(proxies.map(p => p.close()));
    await cluster?.close();
  });

  it('a waiter whose lease is revoked while it is queued is never granted the lock; the next waiter is', async () => {
    const prefix = 'revoked/';
    const holderClient = on(0, prefix);
    const victimClient = on(1, prefix);
    const nextClient = on(2, prefix);
    // The release comes: at once after the revocation (racing with it), or once the victim knows.
    const timings = ['release at once', 'release once the victim gave up', 'release at once', 'release once the victim gave up'];
    const rows: Array<RevokedWaiterRound & { timing: string; victim: string }> = [];
    for (const [round, timing] of timings.entries()) {
      const resource = `r${round}`;
      const holder = await holderClient.acquire(resource);
      const victim = outcome('victim', victimClient.acquire(resource, { waitTimeout: 20_000 }));
      await queueLength(`${prefix}${resource}/`, 2);
      const next = outcome('next', nextClient.acquire(resource, { waitTimeout: 20_000 }));
      await queueLength(`${prefix}${resource}/`, 3);
      const [, victimKey] = await keysAt(view, `${prefix}${resource}/`);

      await view.leaseClient.leaseRevoke({ ID: BigInt(`0x${victimKey!.lease}`).toString() });
      const revokedAt = performance.now();
      if (timing === 'release at once') await holder.release();
      const victimResult = await withTimeout(victim, 10_000, 'the victim to give up');
      if (timing !== 'release at once') await holder.release();
      const nextResult = await withTimeout(next, 10_000, 'the next waiter');
      rows.push({
        timing,
        victim: victimResult.lock ? 'GRANTED' : (victimResult.error as Error).name,
        victimGranted: victimResult.lock !== undefined,
        rejectedAfterRevokeMs: victimResult.at - revokedAt,
        nextGranted: nextResult.lock !== undefined,
      });
      expect(victimResult.lock).toBeUndefined();
      expect(victimResult.error).toBeInstanceOf(LockLostError);
      expect(nextResult.lock).toBeDefined();
      expect(nextResult.lock!.fencingToken).toBeGreaterThan(holder.fencingToken);
      await nextResult.lock!.release();
      expect(await keysAt(view, `${prefix}${resource}/`)).toEqual([]);
    }
    // The victim's client recovers with a fresh lease.
    const again = await victimClient.acquire('after', { waitTimeout: 5000 });
    await again.release();
    const granted = reportRevokedWaiters("waiter's lease revoked while queued", 'it is never granted the lock', rows);
    expect(granted).toBe(0);
  });

  it('compaction while waiting (one waiter per member, one whose watch stream breaks): every waiter resumes, none hangs', async () => {
    const prefix = 'compact/';
    const resource = 'c';
    proxies = await Promise.all(cluster.endpoints.map(e => startTcpProxy(e)));
    const holderClient = on(0, prefix);
    const waiterClients = [on(0, prefix), on(1, prefix), on(2, prefix)];
    const proxied = new EtcdLockClient({ hosts: proxies.map(p => p.url), prefix, ttl: 5, requestTimeout: 2000 });
    clients.push(proxied);
    await proxied.connect();

    const holder = await holderClient.acquire(resource);
    const waiting: Array<Promise<Outcome>> = [];
    // The proxied waiter queues second: if its fault made it lose its place, the order shows it.
    const names = ['member0', 'proxied', 'member1', 'member2'];
    const queueOrder = [waiterClients[0]!, proxied, waiterClients[1]!, waiterClients[2]!];
    for (const [i, client] of queueOrder.entries()) {
      // Each waiter lets go as soon as it is granted: the chain runs by itself.
      const granted = client.acquire(resource, { waitTimeout: 30_000 }).then(async lock => {
        const at = performance.now();
        await lock.release();
        return Object.assign(lock, { grantedAt: at });
      });
      waiting.push(outcome(names[i]!, granted));
      await queueLength(`${prefix}${resource}/`, i + 2);
    }
    const before = await currentRevision(view);
    for (let i = 0; i < 50; i++) await view.put(`${prefix}noise`).value(String(i));
    await view.delete().key(`${prefix}noise`);

    // The proxied waiter's connections are cut while its predecessor goes and history is compacted:
    // its watch cannot have seen the deletion, and the revisions it would resume from are gone.
    for (const proxy of proxies) proxy.setMode('blackhole');
    const compactRevision = await currentRevision(view);
    await view.kv.compact({ revision: compactRevision.toString(), physical: true });
    const compactedAt = performance.now();
    for (const proxy of proxies) proxy.setMode('reset');
    await delay(100);
    for (const proxy of proxies) proxy.setMode('pass');

    await holder.release();
    const grants = await withTimeout(Promise.all(waiting), 15_000, 'every waiter to be granted');
    const granted = grants.filter(g => g.lock).sort((a, b) => a.at - b.at);
    const grantOrder = granted.map(g => g.name);
    const tokens = granted.map(g => g.lock!.fencingToken);
    const inOrder = tokens.every((t, i) => i === 0 || t > tokens[i - 1]!);
    const keptPlace = grantOrder.join() === names.join();
    const leftover = (await keysAt(view, prefix)).length;
    report({
      scenario: 'compaction while waiting',
      bound: 'waiters resume, none hangs',
      figures: {
        waiters: waiting.length,
        compactedRevisions: Number(compactRevision - before),
        granted: granted.length,
        failed:
          grants
            .filter(g => g.error)
            .map(g => `${g.name}:${(g.error as Error).name}`)
            .join('|') || 'none',
        grantOrder: grantOrder.join('>'),
        tokensRiseInGrantOrder: inOrder,
        everyWaiterKeptItsPlace: keptPlace,
        lastGrantAfterCompactionMs: Math.max(...grants.map(g => g.at)) - compactedAt,
        leftoverKeys: leftover,
      },
      pass: granted.length === waiting.length && inOrder && leftover === 0,
    });
    expect(grants.filter(g => g.error).map(g => `${g.name}: ${(g.error as Error).message}`)).toEqual([]);
    expect(inOrder).toBe(true);
    // Nobody moves: compaction does not reorder the queue, and the waiter whose watch broke keeps
    // its key (its re-read of the queue is retried while the reset lasts), so its place too.
    expect(grantOrder).toEqual(names);
    expect(leftover).toBe(0);
  });
});
