/**
 * Fault suite, faults of the HOLDER process, on a 3-member cluster: the holder is a separate Node
 * process (test/workers/fault-worker.ts) that is stopped (SIGSTOP past its TTL), killed
 * (SIGKILL; a mutex's holder and a semaphore's), or whose key is deleted from outside (`etcdctl del`). Every holder writes through the
 * fenced store; its history is checked against etcd's MVCC store.
 */
import { jest } from '@jest/globals';
import type { Etcd3 } from 'etcd3';
import { etcdctl, type EtcdCluster } from '../support/etcd.js';
import type { FencedStore } from '../support/fenced-store.js';
import { waitFor } from '../support/wait.js';
import {
  checkHistory,
  keysAt,
  msBetween,
  nowNs,
  report,
  startFaultFixture,
  startFaultWorker,
  stopFaultFixture,
  type FaultWorker,
  type Grant,
  type Message,
} from './helpers.js';

jest.setTimeout(60_000);

const TTL_S = 2;
const PREFIX = 'holder/';

function grantOf(m: Message, worker: FaultWorker): Grant {
  return {
    resource: m.resource as string,
    prefix: `${PREFIX}${m.resource as string}/`,
    key: m.key as string,
    token: BigInt(m.token as string),
    at: BigInt(m.t as string),
    ...(m.seenRevision ? { seenRevision: BigInt(m.seenRevision as string) } : {}),
    worker: worker.id,
  };
}

describe('fault suite: holder process faults (3-member cluster)', () => {
  let cluster: EtcdCluster;
  let store: FencedStore;
  let view: Etcd3;

  const worker = (id: string, endpoints = cluster.endpoints) =>
    startFaultWorker(id, { endpoints, store: store.url, ttl: TTL_S, prefix: PREFIX });
  const queued = (resource: string, count: number) =>
    waitFor(async () => (await keysAt(view, `${PREFIX}${resource}/`)).length === count, { message: `${count} keys queued on ${resource}` });

  beforeAll(async () => {
    ({ cluster, store, view } = await startFaultFixture());
  });

  afterAll(() => stopFaultFixture({ cluster, store, view }));

  it('holder SIGSTOPped past its TTL: the successor takes over after expiry; resumed, the holder sees the loss first; 0 stale writes accepted', async () => {
    const resource = 'paused';
    const [holder, successor] = await Promise.all([worker('holder'), worker('successor')]);
    const held = await holder.request({ cmd: 'acquire', resource }, ['acquired', 'acquire-failed']);
    expect(held.type).toBe('acquired');
    expect((await holder.request({ cmd: 'write', resource, note: 'before-pause' }, ['write'])).accepted).toBe(true);
    const waiting = successor.send({ cmd: 'acquire', resource, waitTimeout: 20_000 });
    await queued(resource, 2);

    await holder.request({ cmd: 'hold', resource, tickMs: 20, gapMs: 1000 }, ['holding']);
    await holder.stop();
    const stoppedAt = nowNs();

    const taken = await successor.next(m => m.type === 'acquired' || m.type === 'acquire-failed', { from: waiting, timeoutMs: 15_000 });
    expect(taken.type).toBe('acquired');
    const takeoverMs = msBetween(stoppedAt, taken.t as string);
    expect((await successor.request({ cmd: 'write', resource, note: 'successor' }, ['write'])).accepted).toBe(true);

    const pauseMs = msBetween(stoppedAt, nowNs());
    holder.cont();
    const resumed = await holder.next(m => m.type === 'resumed', { timeoutMs: 10_000 });
    const holderLost = await holder.next(m => m.type === 'lost', { timeoutMs: 5000 });

    const holderWrites = store.writes.filter(w => w.writer === 'holder');
    const staleAccepted = holderWrites.filter(w => w.accepted && w.at > BigInt(taken.t as string)).length;
    const history = await checkHistory(view, [grantOf(held, holder), grantOf(taken, successor)]);
    const ok =
      resumed.abortedAtFirstCheck === true &&
      resumed.throwIfLost === 'LockLostError' &&
      staleAccepted === 0 &&
      history.violations.length === 0 &&
      takeoverMs >= 0;
    report({
      scenario: 'holder SIGSTOP > TTL, then SIGCONT',
      bound: "successor takes over after expiry; resumed holder's signal already aborted at its first check; 0 stale writes accepted",
      figures: {
        ttlS: TTL_S,
        pauseMs,
        takeoverMs,
        abortedAtFirstCheck: resumed.abortedAtFirstCheck as boolean,
        sessionTimerFiredFirst: resumed.lostEventBeforeCheck as boolean,
        staleWritesAccepted: staleAccepted,
        staleWritesRejected: holderWrites.filter(w => !w.accepted).length,
        historyViolations: history.violations.length,
      },
      pass: ok,
    });

    expect(resumed.abortedAtFirstCheck).toBe(true);
    expect(resumed.throwIfLost).toBe('LockLostError');
    expect(resumed.write).toEqual({ accepted: false });
    expect(holderLost.reason).toMatch(/^Lock "paused" lost: the lease was not renewed in time/);
    expect(staleAccepted).toBe(0);
    expect(history.violations).toEqual([]);
    expect(BigInt(taken.token as string)).toBeGreaterThan(BigInt(held.token as string));
    // The successor was granted only once the holder's lease had expired on the server: at the
    // earliest TTL after the holder's last renewal, itself at most TTL/3 before the stop.
    expect(takeoverMs).toBeGreaterThan(TTL_S * 1000 - (TTL_S * 1000) / 3 - 50);
    await Promise.all([holder.close(), successor.close()]);
  });

  it('holder SIGKILLed: the successor acquires within TTL + 1 s', async () => {
    const resource = 'killed';
    const rounds = 2;
    const takeovers: number[] = [];
    const grants: Grant[] = [];
    let holder = await worker('kill-0');
    const first = await holder.request({ cmd: 'acquire', resource }, ['acquired', 'acquire-failed']);
    expect(first.type).toBe('acquired');
    grants.push(grantOf(first, holder));
    for (let round = 1; round <= rounds; round++) {
      const successor = await worker(`kill-${round}`);
      const waiting = successor.send({ cmd: 'acquire', resource, waitTimeout: 20_000 });
      await queued(resource, 2);
      await holder.kill();
      const killedAt = nowNs();
      const taken = await successor.next(m => m.type === 'acquired' || m.type === 'acquire-failed', { from: waiting, timeoutMs: 15_000 });
      expect(taken.type).toBe('acquired');
      takeovers.push(msBetween(killedAt, taken.t as string));
      grants.push(grantOf(taken, successor));
      expect((await successor.request({ cmd: 'write', resource }, ['write'])).accepted).toBe(true);
      holder = successor;
    }
    const history = await checkHistory(view, grants);
    const bound = TTL_S * 1000 + 1000;
    const maxTakeover = Math.max(...takeovers);
    report({
      scenario: 'holder SIGKILL',
      bound: 'successor acquires within TTL + 1 s',
      figures: {
        ttlS: TTL_S,
        rounds,
        takeoverMsMin: Math.min(...takeovers),
        takeoverMsMax: maxTakeover,
        boundMs: bound,
        historyViolations: history.violations.length,
        writesRejected: store.rejected(resource).length,
      },
      pass: maxTakeover <= bound && history.violations.length === 0,
    });
    expect(maxTakeover).toBeLessThanOrEqual(bound);
    expect(history.violations).toEqual([]);
    expect(store.rejected(resource)).toEqual([]);
    await holder.close();
    expect(await keysAt(view, `${PREFIX}${resource}/`)).toEqual([]);
  });

  it('semaphore holder SIGKILLed: its permit returns after the TTL, to the first waiter; the other holder keeps its own', async () => {
    const resource = 'semaphore-killed';
    const permits = 2;
    const [victim, other, waiter] = await Promise.all([worker('sem-victim'), worker('sem-other'), worker('sem-waiter')]);
    const held = await victim.request({ cmd: 'acquire', resource, permits }, ['acquired', 'acquire-failed']);
    const kept = await other.request({ cmd: 'acquire', resource, permits }, ['acquired', 'acquire-failed']);
    expect([held.type, kept.type]).toEqual(['acquired', 'acquired']);
    const waiting = waiter.send({ cmd: 'acquire', resource, permits, waitTimeout: 20_000 });
    await queued(resource, 3);

    await victim.kill();
    const killedAt = nowNs();
    const taken = await waiter.next(m => m.type === 'acquired' || m.type === 'acquire-failed', { from: waiting, timeoutMs: 15_000 });
    expect(taken.type).toBe('acquired');
    const takeoverMs = msBetween(killedAt, taken.t as string);
    const keys = (await keysAt(view, `${PREFIX}${resource}/`)).map(e => e.key);
    const history = await checkHistory(view, [grantOf(held, victim), grantOf(kept, other), grantOf(taken, waiter)]);
    const otherLost = other.all('lost').length;
    const bound = TTL_S * 1000 + 1000;
    // Granted only once the victim's lease had expired: at the earliest TTL after its last
    // renewal, itself at most TTL/3 before the kill.
    const earliest = TTL_S * 1000 - (TTL_S * 1000) / 3 - 50;
    report({
      scenario: 'semaphore holder SIGKILL',
      bound: 'its permit returns to the first waiter within TTL + 1 s, not before its lease expires; the other holder keeps its permit',
      figures: {
        ttlS: TTL_S,
        permits,
        takeoverMs,
        boundMs: bound,
        holdersAfter: keys.length,
        otherHolderLost: otherLost,
        historyViolations: history.violations.length,
      },
      pass: takeoverMs <= bound && takeoverMs > earliest && otherLost === 0 && history.violations.length === 0,
    });
    expect(takeoverMs).toBeLessThanOrEqual(bound);
    expect(takeoverMs).toBeGreaterThan(earliest);
    expect(keys).toEqual([kept.key, taken.key]);
    expect(otherLost).toBe(0);
    expect(history.violations).toEqual([]);
    expect(BigInt(taken.token as string)).toBeGreaterThan(BigInt(kept.token as string));
    await Promise.all([other.close(), waiter.close()]);
    expect(await keysAt(view, `${PREFIX}${resource}/`)).toEqual([]);
  });

  it('lock key deleted externally (etcdctl del through another member): the holder detects it, its late write is refused', async () => {
    const resource = 'deleted';
    // Holder, successor and etcdctl each on a different member.
    const [holder, successor] = await Promise.all([
      worker('del-holder', [cluster.endpoints[0]!]),
      worker('del-successor', [cluster.endpoints[1]!]),
    ]);
    const held = await holder.request({ cmd: 'acquire', resource }, ['acquired', 'acquire-failed']);
    expect(held.type).toBe('acquired');
    expect((await holder.request({ cmd: 'write', resource }, ['write'])).accepted).toBe(true);
    const waiting = successor.send({ cmd: 'acquire', resource, waitTimeout: 20_000 });
    await queued(resource, 2);

    const deleting = nowNs();
    const del = await etcdctl([cluster.endpoints[2]!], ['del', held.key as string]);
    expect(del).toMatchObject({ code: 0, stdout: '1\n' });
    const deletedAt = nowNs();
    const [lost, taken] = await Promise.all([
      holder.next(m => m.type === 'lost', { timeoutMs: 5000 }),
      successor.next(m => m.type === 'acquired' || m.type === 'acquire-failed', { from: waiting, timeoutMs: 5000 }),
    ]);
    expect(taken.type).toBe('acquired');
    expect((await successor.request({ cmd: 'write', resource }, ['write'])).accepted).toBe(true);
    const late = await holder.request({ cmd: 'write', resource, note: 'after-deletion' }, ['write']);
    const detectMs = msBetween(deletedAt, lost.t as string);
    const bothBelieveMs = Math.max(0, msBetween(taken.t as string, lost.t as string));
    const history = await checkHistory(view, [grantOf(held, holder), grantOf(taken, successor)]);
    // The audit runs after each renewal (every TTL/3); allow that, its round trip and a loaded machine.
    const bound = (TTL_S * 1000) / 3 + 800;
    report({
      scenario: 'lock key deleted externally (etcdctl del)',
      bound: 'holder detects it (signal aborts)',
      figures: {
        ttlS: TTL_S,
        detectMs,
        detectBoundMs: bound,
        etcdctlMs: msBetween(deleting, deletedAt),
        bothBelieveHeldMs: bothBelieveMs,
        staleWritesAccepted: late.accepted ? 1 : 0,
        historyViolations: history.violations.length,
      },
      pass: detectMs <= bound && !late.accepted && history.violations.length === 0,
    });
    expect(lost.reason).toBe('Lock "deleted" lost: its key was deleted from etcd');
    expect(detectMs).toBeLessThanOrEqual(bound);
    expect(late.accepted).toBe(false);
    expect(history.violations).toEqual([]);
    await Promise.all([holder.close(), successor.close()]);
  });
});
