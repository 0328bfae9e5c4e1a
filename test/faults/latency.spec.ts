/**
 * Fault suite, LATENCY between a client and etcd: the TCP proxy (test/support/tcp-proxy.ts)
 * holds bytes back, one way or both, fixed or jittered, longer than `requestTimeout` or shorter
 * than the loss margin. Bytes are delayed, never lost: a request the client gave up on still
 * reaches etcd and is applied, late. The faulted clients run in this process, so their loss
 * signals, their lease traffic and etcd's view (through a direct observer) share one clock.
 * Every holder writes its fencing token to the fenced store; sections are checked for overlap
 * and grants against etcd's MVCC history.
 */
import { jest } from '@jest/globals';
import type { Etcd3, Watcher } from 'etcd3';
import { EtcdLockClient, LockLostError, type LockHandle } from '../../lib/core/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { startFencedStore, type FencedStore } from '../support/fenced-store.js';
import { startTcpProxy, type DelaySpec, type TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';
import { countRpcs } from '../support/rpc-counter.js';
import {
  abortedAt,
  checkHistory,
  currentRevision,
  keysAt,
  nowNs,
  observer,
  overlaps,
  recordLeaseTraffic,
  report,
  withTimeout,
  type Grant,
  type Section,
} from './helpers.js';

jest.setTimeout(60_000);

/** The session's loss margin for a TTL (see Session). */
const marginMs = (ttlS: number) => Math.min(1000, Math.max(100, ttlS * 100));

describe('fault suite: latency between client and etcd (delaying TCP proxy)', () => {
  let etcd: EtcdCluster;
  let store: FencedStore;
  let view: Etcd3;
  const proxies: TcpProxy[] = [];
  const clients: EtcdLockClient[] = [];
  const watchers: Watcher[] = [];

  const proxy = async () => {
    const started = await startTcpProxy(etcd.endpoints[0]!);
    proxies.push(started);
    return started;
  };
  const lockClient = (hosts: string[], prefix: string, options: { ttl: number; requestTimeout?: number }) => {
    const client = new EtcdLockClient({ hosts, prefix, ttl: options.ttl, requestTimeout: options.requestTimeout ?? 1000 });
    clients.push(client);
    return client;
  };
  /** Round trips until each proxy has carried one, so no connection is still being set up when the delay starts. */
  const warmUp = async (client: EtcdLockClient, through: TcpProxy[]) => {
    const before = through.map(p => p.forwarded.toClient);
    await waitFor(
      async () => {
        await client.ping(1000);
        return through.every((p, i) => p.forwarded.toClient > before[i]!);
      },
      { timeoutMs: 5000, intervalMs: 0, message: 'a round trip through every proxy' },
    );
  };
  /** A holder's write to the fenced store; true when the store accepted the token. */
  const storeWrite = async (resource: string, token: bigint, writer: string) => {
    const res = await fetch(`${store.url}/write`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ resource, token: token.toString(), writer }),
    });
    return res.status === 200;
  };
  /** A grant for the history check, with the revision of a linearizable read made right after it. */
  const grantOf = async (resource: string, prefix: string, lock: LockHandle, worker: string): Promise<Grant> => ({
    resource,
    prefix: `${prefix}${resource}/`,
    key: lock.key,
    token: lock.fencingToken,
    at: nowNs(),
    seenRevision: await currentRevision(view),
    worker,
  });

  beforeAll(async () => {
    [etcd, store] = await Promise.all([startEtcd(), startFencedStore()]);
    view = observer(etcd.endpoints);
  });

  afterEach(() => {
    for (const p of proxies) p.setDelay({});
  });

  afterAll(async () => {
    await Promise.all(watchers.map(w => w.cancel().catch(() => undefined)));
    await Promise.all(clients.map(c => c.close().catch(() => undefined)));
    view?.close();
    await Promise.all(proxies.map(p => p.close()));
    await store?.close();
    await etcd?.close();
  });

  it('puts that time out land later (client→etcd delayed 2.5 s on one of two connections): no key of ours without a handle remains, another client acquires', async () => {
    const prefix = 'late-put/';
    const ttl = 10;
    const renewEveryMs = (ttl * 1000) / 3;
    const acquisitions = 24;
    const slow = await proxy();
    const fast = await proxy();
    const client = lockClient([slow.url, fast.url], prefix, { ttl, requestTimeout: 1000 });
    await client.connect();
    await warmUp(client, [slow, fast]);
    const lease = client.status().leaseId!;
    const ourKeys = async () => (await keysAt(view, prefix)).filter(k => k.lease === lease);

    // Puts of our keys that etcd applies after their acquisition gave up.
    const gaveUp = new Map<string, number>();
    const lateLandings: string[] = [];
    const watcher = await view.watch().prefix(prefix).create();
    watchers.push(watcher);
    watcher.on('put', kv => {
      const resource = kv.key.toString().slice(prefix.length).split('/')[0]!;
      if (gaveUp.has(resource) && BigInt(kv.lease).toString(16) === lease) lateLandings.push(kv.key.toString());
    });

    slow.setDelay({ toServer: 2500 });
    const started = performance.now();
    const outcomes = await Promise.all(
      Array.from({ length: acquisitions }, (_, i) =>
        client.acquire(`r${i}`, { waitTimeout: 800 }).then(
          lock => ({ resource: `r${i}`, lock }),
          (err: unknown) => {
            gaveUp.set(`r${i}`, performance.now());
            return { resource: `r${i}`, err };
          },
        ),
      ),
    );
    const granted = outcomes.flatMap(o => ('lock' in o ? [o.lock] : []));
    await Promise.all(granted.map(lock => lock.release()));
    slow.setDelay({});
    await waitFor(() => slow.delayed.toServer === 0, { timeoutMs: 5000, intervalMs: 10, message: 'the delayed bytes delivered' });
    const delayEndedAt = performance.now();
    const orphansAtDelayEnd = (await ourKeys()).length;

    // Within one renewal interval (+ the audit's round trip and a margin), none is left.
    const bound = renewEveryMs + 1000;
    let cleanedAt = NaN;
    let left = orphansAtDelayEnd;
    try {
      await waitFor(async () => (left = (await ourKeys()).length) === 0, {
        timeoutMs: bound,
        intervalMs: 50,
        message: 'no key of ours without a handle',
      });
      cleanedAt = performance.now();
    } catch {
      // reported below
    }
    // Another application gets every resource.
    const other = lockClient(etcd.endpoints, prefix, { ttl });
    const others = await Promise.all(
      outcomes.map(o =>
        other.acquire(o.resource, { waitTimeout: 2000 }).then(
          lock => lock,
          () => undefined,
        ),
      ),
    );
    const othersGranted = others.filter(Boolean).length;
    await Promise.all(others.map(lock => lock?.release()));
    report({
      scenario: 'client→etcd delayed 2.5 s on one of two connections, requestTimeout 1 s, TTL 10 s: late-landing puts',
      bound: 'no key of ours without a handle within one renewal interval + 1 s of the delay ending; another client acquires',
      figures: {
        acquisitions,
        timedOut: gaveUp.size,
        granted: granted.length,
        lateLandingPuts: lateLandings.length,
        orphansAtDelayEnd,
        orphansLeft: left,
        cleanedAfterDelayEndMs: cleanedAt - delayEndedAt,
        boundMs: bound,
        otherClientGranted: `${othersGranted}/${acquisitions}`,
        acquisitionsTookMs: delayEndedAt - started,
      },
      pass: left === 0 && othersGranted === acquisitions,
    });
    expect(gaveUp.size).toBeGreaterThan(0);
    expect(lateLandings.length).toBeGreaterThan(0);
    expect(left).toBe(0);
    expect(othersGranted).toBe(acquisitions);
  });

  it('keepalives delayed less than the loss margin (both ways, 20–80 ms jitter): the lock is kept, 0 spurious losses', async () => {
    const prefix = 'slow-keepalive-short/';
    const ttl = 2;
    const through = await proxy();
    const client = lockClient([through.url], prefix, { ttl });
    const traffic = recordLeaseTraffic(client.etcd);
    const lock = await client.acquire('kept');
    through.setDelay({ both: { minMs: 20, maxMs: 80 } });
    const acksBefore = traffic.acked.length;
    const holdMs = 3 * ttl * 1000;
    const lost = abortedAt(lock.signal);
    const outcome = await Promise.race([lost, new Promise<undefined>(resolve => setTimeout(() => resolve(undefined), holdMs))]);
    const renewals = traffic.acked.length - acksBefore;
    const status = client.status();
    report({
      scenario: 'keepalives delayed < margin (both ways, 20–80 ms jitter), TTL 2 s',
      bound: 'lock kept, 0 spurious losses',
      figures: {
        ttlS: ttl,
        marginMs: marginMs(ttl),
        heldMs: holdMs,
        renewals,
        spuriousLosses: outcome ? 1 : 0,
        sameLease: status.leaseId === lock.leaseId,
      },
      pass: outcome === undefined && status.state === 'alive' && status.leaseId === lock.leaseId,
    });
    expect(outcome).toBeUndefined();
    expect(status).toMatchObject({ state: 'alive', leaseId: lock.leaseId });
    expect(renewals).toBeGreaterThanOrEqual(6);
    await lock.release();
  });

  it.each<[string, DelaySpec]>([
    ['answers delayed 3 s (etcd→client)', { toClient: 3000 }],
    ['both ways, 1.2–1.8 s jitter', { both: { minMs: 1200, maxMs: 1800 } }],
  ])(
    'keepalives delayed past the TTL (%s): loss before etcd could expire the lease, no successor before signal + margin, no overlap',
    async (name, spec) => {
      const prefix = `slow-keepalive-${proxies.length}/`;
      const resource = 'slow';
      const ttl = 2;
      const through = await proxy();
      const holderClient = lockClient([through.url], prefix, { ttl });
      const successorClient = lockClient(etcd.endpoints, prefix, { ttl });
      const traffic = recordLeaseTraffic(holderClient.etcd);
      await holderClient.connect();
      await warmUp(holderClient, [through]);
      const grants: Grant[] = [];
      const sections: Section[] = [];

      const lock = await holderClient.acquire(resource);
      const enter = nowNs();
      grants.push(await grantOf(resource, prefix, lock, 'holder'));
      const holderWrote = await storeWrite(resource, lock.fencingToken, 'holder');
      const lost = abortedAt(lock.signal);
      const successor = successorClient
        .acquire(resource, { waitTimeout: 15_000 })
        .then(handle => ({ handle, at: performance.now(), ns: nowNs() }));
      await waitFor(async () => (await keysAt(view, `${prefix}${resource}/`)).length === 2, { message: 'the successor queued' });
      const acks = traffic.acked.length;
      await waitFor(() => traffic.acked.length > acks, { timeoutMs: 3000, message: 'a keepalive acknowledged' });

      through.setDelay(spec);
      const delayedAt = performance.now();
      const { at: lostAt, reason } = await withTimeout(lost, 5000, 'the holder to learn of the loss');
      sections.push({ resource, token: lock.fencingToken, enter, exit: nowNs() });
      const earliestExpiry = traffic.lastAckedSend() + ttl * 1000;
      const { handle: next, at: grantedAt, ns: nextEnter } = await withTimeout(successor, 10_000, 'the successor grant');
      grants.push(await grantOf(resource, prefix, next, 'successor'));
      const successorWrote = await storeWrite(resource, next.fencingToken, 'successor');
      // The old holder, ignoring its signal, writes again: the store refuses the stale token.
      const staleAccepted = await storeWrite(resource, lock.fencingToken, 'holder');
      await next.release();
      sections.push({ resource, token: next.fencingToken, enter: nextEnter, exit: nowNs() });
      const history = await checkHistory(view, grants);
      const overlapping = overlaps(sections);
      const leadMs = earliestExpiry - lostAt;
      const successorAfterSignalMs = grantedAt - lostAt;
      const margin = marginMs(ttl);
      const ok =
        leadMs > 0 &&
        successorAfterSignalMs >= margin - 2 &&
        overlapping === 0 &&
        history.violations.length === 0 &&
        !staleAccepted &&
        holderWrote &&
        successorWrote;
      report({
        scenario: `keepalives delayed past the TTL: ${name}, TTL 2 s`,
        bound:
          'loss signalled before the earliest server expiry; no successor before signal + margin; 0 overlaps, 0 history violations, stale write refused',
        figures: {
          ttlS: ttl,
          marginMs: margin,
          lossAfterDelayStartMs: lostAt - delayedAt,
          leadVsEarliestExpiryMs: leadMs,
          successorGrantedAfterSignalMs: successorAfterSignalMs,
          overlaps: overlapping,
          historyViolations: history.violations.length,
          staleWriteAccepted: staleAccepted,
        },
        pass: ok,
      });
      expect(reason).toBeInstanceOf(LockLostError);
      expect(leadMs).toBeGreaterThan(0);
      // Measured on this process's clock; 2 ms for timer granularity.
      expect(successorAfterSignalMs).toBeGreaterThanOrEqual(margin - 2);
      expect(history.violations).toEqual([]);
      expect(overlapping).toBe(0);
      expect([holderWrote, successorWrote, staleAccepted]).toEqual([true, true, false]);
      through.setDelay({});
      await lock.release();
    },
  );

  it('watch creates delayed (both ways 100–400 ms jitter, then one create held 3 s > requestTimeout) while the holder releases: waiters are still granted, in order, without overlap', async () => {
    const prefix = 'slow-watch/';
    const resource = 'watched';
    const through = await proxy();
    // requestTimeout 2 s: a put through the jitter (RTT up to 0.8 s) must not time out under load.
    const waiterClient = lockClient([through.url], prefix, { ttl: 10, requestTimeout: 2000 });
    const holderClient = lockClient(etcd.endpoints, prefix, { ttl: 10 });
    await waiterClient.connect();
    await warmUp(waiterClient, [through]);
    const rpcs = countRpcs(waiterClient.etcd);
    const grants: Grant[] = [];
    const sections: Section[] = [];
    const handoffs: number[] = [];
    const rounds: Array<{ name: string; spec: DelaySpec; holdCreateMs?: number }> = [
      ...Array.from({ length: 4 }, (_, i) => ({ name: `jitter ${i + 1}`, spec: { both: { minMs: 100, maxMs: 400 } } })),
      { name: 'create held 3 s', spec: {}, holdCreateMs: 3000 },
    ];
    try {
      for (const round of rounds) {
        through.setDelay(round.spec);
        const holder = await holderClient.acquire(resource);
        const holderEnter = nowNs();
        grants.push(await grantOf(resource, prefix, holder, 'holder'));
        let releasedAt = NaN;
        // The holder lets go the moment the waiter starts its watch, so the create travels while
        // the deletion happens: etcd arms the watch after the event it was meant to catch.
        rpcs.beforeWatch = () => {
          rpcs.beforeWatch = undefined;
          if (round.holdCreateMs) through.setDelay({ toServer: round.holdCreateMs });
          sections.push({ resource, token: holder.fencingToken, enter: holderEnter, exit: nowNs() });
          releasedAt = performance.now();
          void holder.release();
          // Bytes sent from now on are not delayed, but they queue behind the held create.
          if (round.holdCreateMs) setTimeout(() => through.setDelay({}), 50);
        };
        const waiter = await waiterClient.acquire(resource, { waitTimeout: 10_000 });
        handoffs.push(performance.now() - releasedAt);
        const enter = nowNs();
        grants.push(await grantOf(resource, prefix, waiter, 'waiter'));
        await waiter.release();
        sections.push({ resource, token: waiter.fencingToken, enter, exit: nowNs() });
      }
    } finally {
      rpcs.beforeWatch = undefined;
      rpcs.restore();
      through.setDelay({});
    }
    const history = await checkHistory(view, grants);
    const overlapping = overlaps(sections);
    const tokensRise = grants.every((g, i) => i === 0 || g.token > grants[i - 1]!.token);
    report({
      scenario: 'watch creates delayed (100–400 ms jitter both ways; one create held 3 s > requestTimeout 2 s) as the holder releases',
      bound: 'waiters still granted, in order, 0 overlaps, 0 history violations',
      figures: {
        rounds: rounds.length,
        waitersGranted: handoffs.length,
        handoffMsMaxJitter: Math.max(...handoffs.slice(0, 4)),
        handoffMsCreateHeld: handoffs[4]!,
        overlaps: overlapping,
        historyViolations: history.violations.length,
        tokensRise,
      },
      pass: handoffs.length === rounds.length && overlapping === 0 && history.violations.length === 0 && tokensRise,
    });
    expect(handoffs).toHaveLength(rounds.length);
    expect(history.violations).toEqual([]);
    expect(overlapping).toBe(0);
    expect(tokensRise).toBe(true);
    expect(await keysAt(view, prefix)).toEqual([]);
  });
});
