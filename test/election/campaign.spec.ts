/**
 * Elections on real etcd: FIFO order with rising fencing tokens, one candidacy per name, a
 * candidate whose lease is lost while it waits never wins (unlike Go, etcd-io/etcd#19597),
 * proclaim/resign, observe(), and bad input.
 */
import type { Etcd3 } from 'etcd3';
import {
  AlreadyCampaigningError,
  EtcdElections,
  EtcdLockClient,
  InvalidLockArgumentError,
  LockLostError,
  LockTimeoutError,
  type LeaderInfo,
} from '../../lib/core/index.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';
import { abortedAt, observer, readQueue, staysFalse, track, withTimeout } from '../core/helpers.js';

describe('elections on etcd', () => {
  let etcd: EtcdCluster;
  let view: Etcd3;
  const clients: EtcdLockClient[] = [];

  /** A client of its own (its own lease: one candidacy per lease per name) and its elections. */
  async function candidate(ttl = 2): Promise<{ client: EtcdLockClient; elections: EtcdElections }> {
    const client = new EtcdLockClient({ hosts: etcd.endpoints, ttl });
    clients.push(client);
    await client.connect();
    return { client, elections: new EtcdElections(client) };
  }

  beforeAll(async () => {
    etcd = await startEtcd();
    view = observer(etcd.endpoints);
  });

  afterAll(async () => {
    await Promise.all(clients.map(c => c.close()));
    view?.close();
    await etcd?.close();
  });

  it('candidates lead in campaign order, each with a higher fencing token, on the etcdctl elect layout', async () => {
    const [a, b, c] = await Promise.all([candidate(), candidate(), candidate()]);
    const first = await a.elections.campaign('fifo', 'a');
    expect(first.key).toBe(`elections/fifo/${a.client.status().leaseId}`);
    const second = track(b.elections.campaign('fifo', 'b'));
    await waitFor(async () => (await readQueue(view, 'elections/fifo/')).length === 2, { message: 'b queued' });
    const third = track(c.elections.campaign('fifo', 'c'));
    await waitFor(async () => (await readQueue(view, 'elections/fifo/')).length === 3, { message: 'c queued' });
    expect(await staysFalse(() => second.outcome.status !== 'pending' || third.outcome.status !== 'pending', 300)).toBe(true);
    expect(await a.elections.leader('fifo')).toEqual({
      key: first.key,
      value: 'a',
      leaseId: a.client.status().leaseId,
      fencingToken: first.fencingToken,
    });

    await first.resign();
    const leaderB = await second.promise;
    expect(third.outcome.status).toBe('pending');
    expect(leaderB.fencingToken).toBeGreaterThan(first.fencingToken);
    await leaderB.resign();
    const leaderC = await third.promise;
    expect(leaderC.fencingToken).toBeGreaterThan(leaderB.fencingToken);
    expect((await c.elections.leader('fifo'))?.value).toBe('c');
    await leaderC.resign();
    expect(await c.elections.leader('fifo')).toBeUndefined();
  });

  it('refuses a second candidacy on the same name from the same client, and allows one after resigning', async () => {
    const { elections } = await candidate();
    const leadership = await elections.campaign('once', 'x');
    await expect(elections.campaign('once', 'y')).rejects.toBeInstanceOf(AlreadyCampaigningError);
    await leadership.resign();
    const again = await elections.campaign('once', 'y');
    expect(again.fencingToken).toBeGreaterThan(leadership.fencingToken);
    await again.resign();
  });

  it('a candidate whose lease is lost while it waits fails with LockLostError, and does not win when the leader goes', async () => {
    const [leader, waiter] = await Promise.all([candidate(), candidate()]);
    const held = await leader.elections.campaign('lost-while-waiting', 'leader');
    const waiting = track(waiter.elections.campaign('lost-while-waiting', 'waiter'));
    await waitFor(async () => (await readQueue(view, 'elections/lost-while-waiting/')).length === 2, { message: 'waiter queued' });
    // etcd drops the waiter's lease (and its key) under it.
    await view.leaseClient.leaseRevoke({ ID: BigInt(`0x${waiter.client.status().leaseId}`).toString() });
    await held.resign();
    const err = await withTimeout(
      waiting.promise.then(
        () => new Error('the candidate won on a dead lease'),
        (e: unknown) => e,
      ),
      5000,
      'the campaign to fail',
    );
    expect(err).toBeInstanceOf(LockLostError);
    expect(await waiter.elections.leader('lost-while-waiting')).toBeUndefined();
  });

  it("leadership's signal aborts when the leader key is deleted, and proclaim then refuses", async () => {
    const { elections } = await candidate();
    const leadership = await elections.campaign('deleted', 'v1');
    await leadership.proclaim('v2');
    expect((await elections.leader('deleted'))?.value).toBe('v2');
    const lost = abortedAt(leadership.signal);
    await view.delete().key(leadership.key).exec();
    expect((await withTimeout(lost, 5000, 'the signal to abort')).reason).toBeInstanceOf(LockLostError);
    await expect(leadership.proclaim('v3')).rejects.toBeInstanceOf(LockLostError);
    expect(await elections.leader('deleted')).toBeUndefined();
  });

  it('a campaign times out with LockTimeoutError and withdraws its key', async () => {
    const [a, b] = await Promise.all([candidate(), candidate()]);
    const held = await a.elections.campaign('timeout', 'a');
    await expect(b.elections.campaign('timeout', 'b', { timeout: 300 })).rejects.toBeInstanceOf(LockTimeoutError);
    expect((await readQueue(view, 'elections/timeout/')).map(e => e.key)).toEqual([held.key]);
    await held.resign();
  });

  it('observe() reports the leader, each change, and undefined when nobody campaigns', async () => {
    const [a, b] = await Promise.all([candidate(), candidate()]);
    const seen: Array<LeaderInfo | undefined> = [];
    const stop = a.elections.observe('observed', leader => seen.push(leader));
    try {
      await waitFor(() => seen.length === 1, { message: 'the first report' });
      expect(seen[0]).toBeUndefined();
      const first = await a.elections.campaign('observed', 'a');
      await waitFor(() => seen.at(-1)?.value === 'a', { message: 'a reported' });
      const second = track(b.elections.campaign('observed', 'b'));
      await waitFor(async () => (await readQueue(view, 'elections/observed/')).length === 2, { message: 'b queued' });
      await first.proclaim('a2');
      await waitFor(() => seen.at(-1)?.value === 'a2', { message: 'the proclaimed value reported' });
      await first.resign();
      const leaderB = await second.promise;
      await waitFor(() => seen.at(-1)?.fencingToken === leaderB.fencingToken, { message: 'b reported' });
      await leaderB.resign();
      await waitFor(() => seen.length > 0 && seen.at(-1) === undefined, { message: 'no leader reported' });
      expect(seen.map(l => l?.value)).toEqual([undefined, 'a', 'a2', 'b', undefined]);
    } finally {
      stop();
    }
  });

  it('observe() re-syncs after its watch stream broke while the leader changed and history was compacted', async () => {
    const [a, b] = await Promise.all([candidate(), candidate()]);
    const proxy = await startTcpProxy(etcd.endpoints[0]);
    const watcher = new EtcdLockClient({ hosts: [proxy.url], ttl: 5 });
    clients.push(watcher);
    await watcher.connect();
    const seen: Array<string | undefined> = [];
    const stop = new EtcdElections(watcher).observe('resync', leader => seen.push(leader?.value));
    try {
      const first = await a.elections.campaign('resync', 'a');
      await waitFor(() => seen.at(-1) === 'a', { message: 'a reported' });
      // Cut the observer off; meanwhile the leader changes and the revisions it missed are compacted.
      proxy.setMode('blackhole');
      await first.resign();
      const second = await b.elections.campaign('resync', 'b');
      const { header } = await view.kv.range({ key: Buffer.from('elections/resync/'), count_only: true });
      await view.kv.compact({ revision: header.revision, physical: true });
      proxy.setMode('reset');
      proxy.setMode('pass');
      await waitFor(() => seen.at(-1) === 'b', {
        timeoutMs: 10_000,
        message: () => `b reported after the break (seen ${JSON.stringify(seen)})`,
      });
      await second.resign();
      await waitFor(() => seen.length > 0 && seen.at(-1) === undefined, { message: 'no leader reported' });
    } finally {
      stop();
      await proxy.close();
    }
  });

  it('refuses bad names, values and options before any etcd call', async () => {
    const { elections } = await candidate();
    for (const name of ['', 'a/b', 'with space', 'x'.repeat(201), undefined as unknown as string]) {
      await expect(elections.campaign(name, 'v')).rejects.toBeInstanceOf(InvalidLockArgumentError);
      expect(() => elections.observe(name, () => undefined)).toThrow(InvalidLockArgumentError);
    }
    await expect(elections.campaign('ok', 42 as unknown as string)).rejects.toBeInstanceOf(InvalidLockArgumentError);
    await expect(elections.campaign('ok', 'v', { timeout: -1 })).rejects.toBeInstanceOf(InvalidLockArgumentError);
    await expect(elections.campaign('ok', 'v', { waitTimeout: 1 } as never)).rejects.toBeInstanceOf(InvalidLockArgumentError);
    expect(() => new EtcdElections(clients[0]!, 3 as unknown as string)).toThrow(InvalidLockArgumentError);
  });
});
