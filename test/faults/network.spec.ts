/**
 * Fault suite, faults of the NETWORK between a client and a 3-member cluster, injected by TCP
 * proxies (test/support/tcp-proxy.ts, one per member) that blackhole or reset connections. The
 * faulted client runs in this process, so its loss events, its lease traffic and etcd's view
 * share one clock (performance.now()).
 */
import { jest } from '@jest/globals';
import type { Etcd3, Watcher } from 'etcd3';
import { EtcdLockClient, LockLostError, LockTimeoutError, type LockHandle } from '../../lib/core/index.js';
import { startEtcdCluster, type EtcdCluster } from '../support/etcd.js';
import { countRpcs } from '../support/rpc-counter.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';
import { abortedAt, delay, keysAt, observer, recordLeaseTraffic, report, withTimeout, type LeaseTraffic } from './helpers.js';

jest.setTimeout(60_000);

const TTL_S = 2;
/** The session's loss margin for this TTL: 10% of it (see Session). */
const MARGIN_MS = Math.min(1000, Math.max(100, TTL_S * 100));

describe('fault suite: client↔etcd network faults (TCP proxies, 3-member cluster)', () => {
  let cluster: EtcdCluster;
  let proxies: TcpProxy[];
  let view: Etcd3;
  const clients: EtcdLockClient[] = [];
  const watchers: Watcher[] = [];

  const setAll = (mode: 'pass' | 'blackhole' | 'reset', direction?: 'both' | 'to-client') => {
    for (const proxy of proxies) proxy.setMode(mode, { direction });
  };
  /** A client that reaches etcd only through the proxies. */
  const proxied = (prefix: string, options: { ttl?: number; requestTimeout?: number } = {}) => {
    const client = new EtcdLockClient({
      hosts: proxies.map(p => p.url),
      prefix,
      ttl: options.ttl ?? TTL_S,
      requestTimeout: options.requestTimeout ?? 1000,
    });
    clients.push(client);
    return client;
  };
  /** A client with a direct connection to every member. */
  const direct = (prefix: string, ttl = TTL_S) => {
    const client = new EtcdLockClient({ hosts: cluster.endpoints, prefix, ttl });
    clients.push(client);
    return client;
  };
  /** performance.now() of the deletion of `key`, as an observer with a direct connection sees it. */
  const deletionOf = async (key: string) => {
    const watcher = await view.watch().key(key).create();
    watchers.push(watcher);
    return new Promise<number>(resolve => watcher.once('delete', () => resolve(performance.now())));
  };
  /**
   * Makes calls until the client has talked to etcd through every proxy, so that its connections
   * to all three members are up before a fault (a connection still being set up when answers are
   * blackholed never carries a request).
   */
  const warmUp = async (client: EtcdLockClient) => {
    const before = proxies.map(p => p.forwarded);
    await waitFor(
      async () => {
        await client.ping(1000);
        return proxies.every((p, i) => p.forwarded.toServer > before[i]!.toServer && p.forwarded.toClient > before[i]!.toClient);
      },
      { timeoutMs: 5000, intervalMs: 0, message: 'a round trip through every proxy' },
    );
  };
  const acksAfter = (traffic: LeaseTraffic, count: number) => {
    const target = traffic.acked.length + count;
    return waitFor(() => traffic.acked.length >= target, { timeoutMs: 5000, message: `${count} more keepalives acknowledged` });
  };

  beforeAll(async () => {
    cluster = await startEtcdCluster(3);
    proxies = await Promise.all(cluster.endpoints.map(endpoint => startTcpProxy(endpoint)));
    view = observer(cluster.endpoints);
  });

  afterEach(() => setAll('pass'));

  afterAll(async () => {
    setAll('pass');
    await Promise.all(watchers.map(w => w.cancel().catch(() => undefined)));
    await Promise.all(clients.map(c => c.close().catch(() => undefined)));
    view?.close();
    await Promise.all((proxies ?? []).map(p => p.close()));
    await cluster?.close();
  });

  /**
   * Node fires a timer up to ~1 ms BEFORE performance.now() says it is due (libuv counts whole
   * milliseconds): in a plain loop of 200 timers, 143 fired early. If the session's loss timer
   * fires early and is not re-armed, the loss is noticed only at the next renewal tick, TTL/3
   * later: after etcd may have expired the lease (seen as a lead of -8.6 ms here, -13.4 ms in
   * test/core/lease-loss). The second variant makes every timer of this process fire 5 ms early
   * so that this happens every time, whatever the machine's own timer lateness.
   */
  it.each([
    ['timers as they come', false],
    ['every timer 5 ms early', true],
  ])('blackhole > TTL (%s): loss is signalled before the server expires the lease', async (variant, early) => {
    const realSetTimeout = globalThis.setTimeout;
    if (early) {
      globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...rest: unknown[]) =>
        realSetTimeout(fn, typeof ms === 'number' && ms >= 10 ? ms - 5 : ms, ...rest)) as unknown as typeof setTimeout;
    }
    try {
      await blackholeScenario(variant, early ? 'early' : 'plain');
    } finally {
      globalThis.setTimeout = realSetTimeout;
    }
  });

  async function blackholeScenario(variant: string, name: string) {
    const prefix = `blackhole-${name}/`;
    const client = proxied(prefix);
    const traffic = recordLeaseTraffic(client.etcd);
    await client.connect();
    const lock = await client.acquire('partitioned');
    const lost = abortedAt(lock.signal);
    const serverDeleted = deletionOf(lock.key);
    const successor = direct(prefix);
    const successorGranted = successor.acquire('partitioned', { waitTimeout: 15_000 }).then(handle => ({ handle, at: performance.now() }));
    await waitFor(async () => (await keysAt(view, `${prefix}partitioned/`)).length === 2, { message: 'the successor queued' });
    await acksAfter(traffic, 2);

    setAll('blackhole');
    const partitionedAt = performance.now();
    const { at, reason } = await withTimeout(lost, 5000, 'the loss signal');
    const earliestExpiry = traffic.lastAckedSend() + TTL_S * 1000;
    const leadMs = earliestExpiry - at;
    // The session promises to signal at its own deadline: that send time + TTL - margin (10% of the TTL).
    const lateVsOwnDeadlineMs = at - (earliestExpiry - MARGIN_MS);
    const deletedAt = await withTimeout(serverDeleted, 10_000, 'etcd to expire the lease');
    const { handle: next, at: grantedAt } = await withTimeout(successorGranted, 10_000, 'the successor grant');
    const ok = leadMs > 0 && lateVsOwnDeadlineMs < MARGIN_MS / 2 && deletedAt > at && grantedAt > at;
    report({
      scenario: `client-etcd blackhole > TTL (${variant})`,
      bound: 'loss signalled before the server expires the lease (lead > 0 ms)',
      figures: {
        ttlS: TTL_S,
        lossAfterPartitionMs: at - partitionedAt,
        marginMs: MARGIN_MS,
        signalledAfterOwnDeadlineMs: lateVsOwnDeadlineMs,
        leadVsEarliestExpiryMs: leadMs,
        leadVsObservedExpiryMs: deletedAt - at,
        successorGrantedAfterLossMs: grantedAt - at,
      },
      pass: ok,
    });
    expect(reason).toBeInstanceOf(LockLostError);
    expect(leadMs).toBeGreaterThan(0);
    // Not just barely: a late signal would come at the next renewal tick, a whole margin later.
    expect(lateVsOwnDeadlineMs).toBeLessThan(MARGIN_MS / 2);
    expect(deletedAt).toBeGreaterThan(at);
    expect(grantedAt).toBeGreaterThan(at);
    expect(next.fencingToken).toBeGreaterThan(lock.fencingToken);
    setAll('pass');
    await next.release();
    await lock.release();
    await Promise.all([client.close(), successor.close()]);
    expect(await keysAt(view, prefix)).toEqual([]);
  }

  it('reset < TTL: the client reconnects (to another member if needed), keeps the lock, 0 spurious losses', async () => {
    const prefix = 'reset/';
    const client = proxied(prefix);
    const traffic = recordLeaseTraffic(client.etcd);
    await client.connect();
    const lock = await client.acquire('kept');
    const leaseId = lock.leaseId;
    const recoveries: number[] = [];
    const rounds = 4;
    for (let round = 0; round < rounds; round++) {
      await acksAfter(traffic, 1);
      // Reset every open connection, and refuse new ones for 300 ms (well under the TTL).
      setAll('reset');
      const resetAt = performance.now();
      await delay(300);
      setAll('pass');
      await acksAfter(traffic, 1);
      recoveries.push(traffic.acked.at(-1)! - resetAt);
    }
    // One member stays unreachable (every connection to it reset) for 2 TTLs: the client works on
    // with the other two, renewing and taking other locks.
    const down = proxies[0]!;
    down.setMode('reset');
    const acksBefore = traffic.acked.length;
    const started = performance.now();
    let cycles = 0;
    while (performance.now() - started < 2 * TTL_S * 1000) {
      const other = await client.acquire('other', { waitTimeout: 3000 });
      await other.release();
      cycles++;
    }
    down.setMode('pass');
    const acksWithOneDown = traffic.acked.length - acksBefore;
    const spurious = lock.signal.aborted ? 1 : 0;
    const keys = await keysAt(view, `${prefix}kept/`);
    report({
      scenario: 'client-etcd reset < TTL',
      bound: 'reconnect (another endpoint if needed), lock kept, 0 spurious losses',
      figures: {
        ttlS: TTL_S,
        resetRounds: rounds,
        resetMs: 300,
        renewedAfterResetMsMax: Math.max(...recoveries),
        spuriousLosses: spurious,
        oneMemberDownMs: 2 * TTL_S * 1000,
        renewalsWithOneMemberDown: acksWithOneDown,
        lockCyclesWithOneMemberDown: cycles,
      },
      pass: spurious === 0 && client.status().leaseId === leaseId && keys.length === 1,
    });
    expect(spurious).toBe(0);
    expect(client.status()).toMatchObject({ state: 'alive', leaseId });
    expect(keys.map(k => k.key)).toEqual([lock.key]);
    expect(acksWithOneDown).toBeGreaterThanOrEqual(4);
    await lock.release();
    await client.close();
  });

  it('one member blackholed, the one carrying the keepalive stream: loss is still signalled safely (known limitation: it is signalled at all)', async () => {
    const prefix = 'one-member/';
    const client = proxied(prefix);
    const traffic = recordLeaseTraffic(client.etcd);
    await client.connect();
    // Holding no lock, the client's only traffic is its keepalive stream: find its member, as the
    // one proxy that forwarded bytes across a renewal. Not from a single look: a keepalive answered
    // late (a loaded machine) makes the session reopen the stream on another member, and that
    // interval shows two proxies (seen once in 5 runs at load 11); look again, a few renewals at most.
    await acksAfter(traffic, 1);
    const carrying: TcpProxy[] = [];
    const looks: number[] = [];
    await waitFor(
      async () => {
        const before = proxies.map(p => p.forwarded.toServer);
        await acksAfter(traffic, 1);
        carrying.splice(0, carrying.length, ...proxies.filter((p, i) => p.forwarded.toServer > before[i]!));
        looks.push(carrying.length);
        return carrying.length === 1;
      },
      {
        timeoutMs: 10_000,
        intervalMs: 0,
        message: () => `one proxy carrying the keepalive stream (proxies seen moving per renewal: ${looks.join(', ')})`,
      },
    );
    const lock = await client.acquire('stalled-member');
    const lost = abortedAt(lock.signal);
    await acksAfter(traffic, 1);

    carrying[0]!.setMode('blackhole');
    const partitionedAt = performance.now();
    const outcome = await Promise.race([lost, delay(3 * TTL_S * 1000).then(() => undefined)]);
    const leadMs = outcome ? traffic.lastAckedSend() + TTL_S * 1000 - outcome.at : Infinity;
    // The two other members answered all along.
    const others = proxies.filter(p => p !== carrying[0]);
    const othersAnswer = await Promise.all(
      others.map(async p => {
        const probe = new EtcdLockClient({ hosts: [p.url], prefix });
        try {
          await probe.ping(1000);
          return true;
        } catch {
          return false;
        } finally {
          await probe.close();
        }
      }),
    );
    report({
      scenario: 'one of 3 members blackholed (it carries the keepalive stream)',
      bound: 'safety: any loss signalled before the server could expire the lease (limitation: the lock is lost though 2 members answer)',
      figures: {
        ttlS: TTL_S,
        reachableMembers: othersAnswer.filter(Boolean).length,
        renewalsToFindTheStream: looks.length,
        lockLost: outcome !== undefined,
        lossAfterPartitionMs: outcome ? outcome.at - partitionedAt : -1,
        leadVsEarliestExpiryMs: outcome ? leadMs : -1,
      },
      pass: leadMs > 0,
    });
    expect(othersAnswer).toEqual([true, true]);
    // Safety holds either way. (Availability does not: the session keeps waiting on the stalled
    // stream and declares the loss at its deadline; see RELIABILITY.md.)
    expect(leadMs).toBeGreaterThan(0);
    carrying[0]!.setMode('pass');
    await lock.release();
    await client.close();
  });

  it.each([
    ['wait timeout', 'timeout'],
    ['AbortSignal', 'abort'],
  ])(
    'acquire given up (%s) while its put is in flight and the answer is lost: 0 orphaned keys, the queue is not stalled',
    async (_name, how) => {
      const prefix = `mid-${how}/`;
      const resource = 'mid';
      const holderClient = direct(prefix, 5);
      const nextClient = direct(prefix, 5);
      const client = proxied(prefix, { ttl: 5, requestTimeout: 1000 });
      await client.connect();
      await warmUp(client);
      const holder = await holderClient.acquire(resource);

      // Every put of our key that etcd applies, seen by a direct observer.
      const puts: Array<{ key: string; at: number }> = [];
      const watcher = await view.watch().prefix(`${prefix}${resource}/`).create();
      watchers.push(watcher);
      watcher.on('put', kv => puts.push({ key: kv.key.toString(), at: performance.now() }));

      // The moment the enqueue transaction is issued, the answers stop coming back (the request
      // itself still reaches etcd): the client cannot know whether its key was written.
      let armed = true;
      const rpcs = countRpcs(client.etcd);
      rpcs.onCall = call => {
        if (armed && call === 'KV.txnEncoded') {
          armed = false;
          setAll('blackhole', 'to-client');
        }
      };
      const controller = new AbortController();
      const started = performance.now();
      const giveUp = how === 'timeout' ? { waitTimeout: 400 } : { signal: controller.signal, waitTimeout: 10_000 };
      if (how === 'abort') setTimeout(() => controller.abort(new Error('caller gave up')), 400);
      const err = await client.acquire(resource, giveUp).then(
        () => new Error('granted'),
        (e: unknown) => e,
      );
      const gaveUpAt = performance.now();
      rpcs.restore();
      if (how === 'timeout') expect(err).toBeInstanceOf(LockTimeoutError);
      else expect((err as Error).message).toBe('caller gave up');
      expect(gaveUpAt - started).toBeLessThan(1500);

      // The put did land: its key sits in the queue until the client cleans it up.
      await waitFor(() => puts.some(p => p.key.includes(client.status().leaseId!)), { message: 'the in-flight put reached etcd' });
      const orphanKey = puts.find(p => p.key.includes(client.status().leaseId!))!.key;
      // Heal after a while (the client's session survives: 5 s TTL).
      await delay(600);
      setAll('pass');
      const healedAt = performance.now();
      await waitFor(async () => !(await keysAt(view, `${prefix}${resource}/`)).some(k => k.key === orphanKey), {
        timeoutMs: 4000,
        message: 'the orphaned waiter key is deleted by the client',
      });
      const cleanedAt = performance.now();
      const sessionAlive = client.status().state === 'alive';

      // Not stalled: a waiter queued now gets the lock as soon as the holder lets go.
      const next = nextClient.acquire(resource, { waitTimeout: 5000 });
      await waitFor(async () => (await keysAt(view, `${prefix}${resource}/`)).length === 2, { message: 'the next waiter queued' });
      await holder.release();
      const releasedAt = performance.now();
      const nextLock: LockHandle = await next;
      const handoffMs = performance.now() - releasedAt;
      await nextLock.release();
      const leftover = (await keysAt(view, prefix)).length;
      report({
        scenario: `acquire given up mid-request, answer lost (${how})`,
        bound: '0 orphaned waiter keys, queue not stalled',
        figures: {
          gaveUpAfterMs: gaveUpAt - started,
          orphanKeyLifetimeMs: cleanedAt - gaveUpAt,
          cleanedAfterHealMs: cleanedAt - healedAt,
          removedByClientNotExpiry: sessionAlive,
          handoffAfterReleaseMs: handoffMs,
          orphanedKeysLeft: leftover,
        },
        pass: sessionAlive && leftover === 0,
      });
      expect(sessionAlive).toBe(true);
      expect(leftover).toBe(0);
      expect(handoffMs).toBeLessThan(1000);
    },
  );

  it('release: double release, release after loss, release of a re-taken lock never delete another holder’s key', async () => {
    const prefix = 'release/';
    const resource = 'retaken';
    const keysOf = async () => (await keysAt(view, `${prefix}${resource}/`)).map(k => k.key);
    const deletes: string[] = [];
    const watcher = await view.watch().prefix(`${prefix}${resource}/`).create();
    watchers.push(watcher);
    watcher.on('delete', kv => deletes.push(kv.key.toString()));

    const a = proxied(prefix);
    const b = new EtcdLockClient({ hosts: [cluster.endpoints[1]!], prefix, ttl: TTL_S });
    clients.push(b);
    const first = await a.acquire(resource);
    const lost = abortedAt(first.signal);
    const bWaiting = b.acquire(resource, { waitTimeout: 15_000 });
    await waitFor(async () => (await keysOf()).length === 2, { message: 'B queued' });

    // A is cut off past its TTL: it loses the lock, B gets it.
    setAll('blackhole');
    await withTimeout(lost, 5000, "A's loss");
    const bLock = await bWaiting;
    setAll('pass');
    // A takes the lock again (new lease), queued behind B.
    const aAgain = a.acquire(resource, { waitTimeout: 15_000 });
    await waitFor(async () => (await keysOf()).length === 2, { message: 'A queued again' });
    // Release after loss, twice: B's key stays.
    await first.release();
    await first.release();
    const afterLossRelease = await keysOf();
    // B releases twice: A is granted once, its new key stays.
    await bLock.release();
    const second = await aAgain;
    await bLock.release();
    const afterDoubleRelease = await keysOf();
    // The old handle of the re-taken lock, released again: A's NEW key (same client) stays.
    await first.release();
    const afterStaleRelease = await keysOf();
    expect(second.lost).toBe(false);
    await second.release();
    await second.release();
    await waitFor(() => deletes.length === 3, { message: 'three deletions seen' });
    const foreignDeletes = deletes.filter((key, i) => key !== [first.key, bLock.key, second.key][i]).length;
    report({
      scenario: 'double release, release after loss, release of a re-taken lock (3 members)',
      bound: "idempotent, never deletes another holder's key",
      figures: {
        releases: 7,
        keyDeletions: deletes.length,
        foreignKeyDeletions: foreignDeletes,
        secondHolderKeptAfterStaleReleases: afterLossRelease.includes(bLock.key),
        retakenKeyKeptAfterStaleRelease: afterStaleRelease.includes(second.key),
      },
      pass: foreignDeletes === 0 && afterLossRelease.includes(bLock.key) && afterStaleRelease.includes(second.key),
    });
    // A's first key went with its lease (etcd expired it), not by a release.
    expect(deletes).toEqual([first.key, bLock.key, second.key]);
    expect(afterLossRelease).toEqual([bLock.key, expect.stringContaining(second.leaseId)]);
    expect(afterDoubleRelease).toEqual([second.key]);
    expect(afterStaleRelease).toEqual([second.key]);
    expect(await keysOf()).toEqual([]);
    await Promise.all([a.close(), b.close()]);
  });
});
