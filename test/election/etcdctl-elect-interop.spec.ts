/**
 * Our elections and `etcdctl elect` (Go's concurrency.Election) elect among each other on the same
 * key layout, both ways, and `etcdctl elect -l` observes our leader's value.
 */
import type { ChildProcess } from 'node:child_process';
import type { Etcd3 } from 'etcd3';
import type { EtcdElections, EtcdLockClient } from '../../lib/core/index.js';
import { spawnEtcdctl, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { readQueue, staysFalse, track } from '../core/helpers.js';
import { startElectionsOnEtcd, type ElectionsOnEtcd } from './elections-on-etcd.js';

/** A running etcdctl, with its stdout lines so far. */
function etcdctlPeer(endpoints: string[], args: string[]): { child: ChildProcess; lines: () => string[]; exited: Promise<number | null> } {
  const child = spawnEtcdctl(endpoints, args);
  let stdout = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.resume();
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)));
  return { child, lines: () => stdout.split('\n').filter(l => l !== ''), exited };
}

describe('interop with etcdctl elect', () => {
  let setup: ElectionsOnEtcd | undefined;
  let etcd: EtcdCluster;
  let client: EtcdLockClient;
  let elections: EtcdElections;
  let view: Etcd3;

  beforeAll(async () => {
    setup = await startElectionsOnEtcd(2);
    ({ etcd, client, elections, view } = setup);
  });
  afterAll(() => setup?.close());

  it('etcdctl leading: our campaign waits, and leads once etcdctl resigns, with a higher fencing token', async () => {
    const theirs = etcdctlPeer(etcd.endpoints, ['elect', 'elections/ctl-first', 'theirs']);
    await waitFor(() => theirs.lines().includes('theirs'), { message: 'etcdctl leads' });
    const [theirKey] = await readQueue(view, 'elections/ctl-first/');
    expect(await elections.leader('ctl-first')).toMatchObject({ key: theirKey!.key, value: 'theirs' });

    const ours = track(elections.campaign('ctl-first', 'ours'));
    await waitFor(async () => (await readQueue(view, 'elections/ctl-first/')).length === 2, { message: 'our key queued' });
    expect(await staysFalse(() => ours.outcome.status !== 'pending', 300)).toBe(true);

    theirs.child.kill('SIGTERM'); // etcdctl resigns on SIGTERM
    const leadership = await ours.promise;
    expect(leadership.key).toBe(`elections/ctl-first/${client.status().leaseId}`);
    expect(leadership.fencingToken).toBeGreaterThan(theirKey!.createRevision);
    await theirs.exited;
    await leadership.resign();
  });

  it('our leadership: etcdctl elect waits, and leads only once we resign', async () => {
    const leadership = await elections.campaign('ours-first', 'ours');
    const theirs = etcdctlPeer(etcd.endpoints, ['elect', 'elections/ours-first', 'theirs']);
    await waitFor(async () => (await readQueue(view, 'elections/ours-first/')).length === 2, { message: "etcdctl's key queued" });
    expect(await staysFalse(() => theirs.lines().length > 0, 300)).toBe(true);

    await leadership.resign();
    await waitFor(() => theirs.lines().includes('theirs'), { message: 'etcdctl leads' });
    expect((await elections.leader('ours-first'))?.value).toBe('theirs');
    theirs.child.kill('SIGTERM');
    await theirs.exited;
  });

  it('`etcdctl elect -l` observes our value and each value we proclaim', async () => {
    const listener = etcdctlPeer(etcd.endpoints, ['elect', '-l', 'elections/observed']);
    const leadership = await elections.campaign('observed', 'ours-v1');
    await waitFor(() => listener.lines().includes('ours-v1'), { message: 'etcdctl sees ours-v1' });
    expect(listener.lines()).toContain(leadership.key);
    await leadership.proclaim('ours-v2');
    await waitFor(() => listener.lines().includes('ours-v2'), { message: 'etcdctl sees ours-v2' });
    await leadership.resign();
    listener.child.kill('SIGTERM');
    await listener.exited;
  });
});
