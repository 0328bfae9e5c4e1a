/**
 * Our locks and `etcdctl lock <prefix><name>` (Go's concurrency.Mutex) exclude each
 * other both ways, on the same key layout — with the etcdctl of the etcd line under test.
 */
import { spawnSync } from 'node:child_process';
import type { Etcd3 } from 'etcd3';
import { EtcdLockClient, LockHandle } from '../../lib/core/index.js';
import { ETCDCTL_BIN, etcdctl, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { readQueue, staysFalse, track } from './helpers.js';
import { etcdctlLock, interopServer } from './peers.js';

describe('interop with etcdctl lock', () => {
  let etcd: EtcdCluster;
  let client: EtcdLockClient;
  let view: Etcd3;

  interopServer(server => ({ etcd, client, view } = server));

  it('etcdctl holding the lock: our tryAcquire gets null, our acquire waits until etcdctl lets go', async () => {
    const theirs = etcdctlLock(etcd.endpoints, 'locks/held-by-etcdctl');
    const theirKey = await theirs.held();
    expect(theirKey).toMatch(/^locks\/held-by-etcdctl\/[0-9a-f]+$/);

    expect(await client.tryAcquire('held-by-etcdctl')).toBeNull();
    // try-only wrote nothing: only etcdctl's key is there.
    expect((await readQueue(view, 'locks/held-by-etcdctl/')).map(e => e.key)).toEqual([theirKey]);

    const ours = track(client.acquire('held-by-etcdctl'));
    // Once our key is queued behind theirs, our acquisition has seen their key and must wait.
    await waitFor(async () => (await readQueue(view, 'locks/held-by-etcdctl/')).length === 2, { message: 'our key queued' });
    const [first, second] = await readQueue(view, 'locks/held-by-etcdctl/');
    expect(first!.key).toBe(theirKey);
    expect(second!.key.startsWith('locks/held-by-etcdctl/')).toBe(true);
    expect(await staysFalse(() => ours.outcome.status !== 'pending', 300)).toBe(true);

    theirs.child.kill('SIGTERM'); // etcdctl unlocks (deletes its key) on SIGTERM
    const handle = await ours.promise;
    expect(handle).toBeInstanceOf(LockHandle);
    expect(handle.key).toBe(second!.key);
    expect(handle.fencingToken).toBeGreaterThan(first!.createRevision);
    expect((await readQueue(view, 'locks/held-by-etcdctl/')).map(e => e.key)).toEqual([handle.key]);
    await theirs.exited;
    await handle.release();
  });

  it('etcdctl killed with SIGKILL: our waiter gets the lock once its lease expires', async () => {
    const theirs = etcdctlLock(etcd.endpoints, 'locks/etcdctl-crash', ['--ttl=1']);
    await theirs.held();
    const ours = track(client.acquire('etcdctl-crash'));
    await waitFor(async () => (await readQueue(view, 'locks/etcdctl-crash/')).length === 2, { message: 'our key queued' });
    theirs.child.kill('SIGKILL'); // no unlock: the key goes with etcdctl's 1 s lease
    const handle = await ours.promise;
    expect(handle.lost).toBe(false);
    await handle.release();
  });

  it('our lock held: etcdctl lock waits, and gets it only once we release', async () => {
    const handle = await client.acquire('held-by-us');
    expect(handle.key).toMatch(new RegExp(`^locks/held-by-us/${handle.leaseId}_[0-9a-z]+$`));

    const theirs = etcdctlLock(etcd.endpoints, 'locks/held-by-us');
    // Go's Mutex puts its key and reads the owner in one transaction: once its key is in etcd,
    // it has seen ours and decided to wait.
    await waitFor(async () => (await readQueue(view, 'locks/held-by-us/')).length === 2, { message: "etcdctl's key queued" });
    const [ourEntry, theirEntry] = await readQueue(view, 'locks/held-by-us/');
    expect(ourEntry!.key).toBe(handle.key);
    expect(await staysFalse(() => theirs.stdout !== '', 300)).toBe(true);
    expect(handle.lost).toBe(false);

    await handle.release();
    expect(await theirs.held()).toBe(theirEntry!.key);
    theirs.child.kill('SIGTERM');
    expect(await theirs.exited).toBe(0);
    await waitFor(async () => (await readQueue(view, 'locks/held-by-us/')).length === 0, { message: 'etcdctl unlocked' });
  });

  it('`etcdctl lock NAME -- cmd` runs its command only after we release, with a later revision than our token', async () => {
    const handle = await client.acquire('cmd-form');
    const run = track(
      etcdctl(etcd.endpoints, ['lock', 'locks/cmd-form', '--', 'sh', '-c', 'echo "$ETCD_LOCK_KEY $ETCD_LOCK_REV"'], { timeoutMs: 10_000 }),
    );
    await waitFor(async () => (await readQueue(view, 'locks/cmd-form/')).length === 2, { message: "etcdctl's key queued" });
    expect(await staysFalse(() => run.outcome.status !== 'pending', 300)).toBe(true);

    await handle.release();
    const result = await run.promise;
    expect(result.code).toBe(0);
    const [key, rev] = result.stdout.trim().split(' ');
    expect(key).toMatch(/^locks\/cmd-form\/[0-9a-f]+$/);
    expect(BigInt(rev!)).toBeGreaterThan(handle.fencingToken);
    // etcdctl unlocked after its command, and the lock is ours again at once.
    const again = await client.tryAcquire('cmd-form');
    expect(again).not.toBeNull();
    expect(again!.fencingToken).toBeGreaterThan(BigInt(rev!));
    await again!.release();
  });

  it('etcdctl waiting behind us whose lease is revoked never takes the lock; what it says depends on its version', async () => {
    const handle = await client.acquire('revoked-etcdctl');
    const theirs = etcdctlLock(etcd.endpoints, 'locks/revoked-etcdctl');
    await waitFor(async () => (await readQueue(view, 'locks/revoked-etcdctl/')).length === 2, { message: "etcdctl's key queued" });
    const [, theirEntry] = await readQueue(view, 'locks/revoked-etcdctl/');
    await view.leaseClient.leaseRevoke({ ID: BigInt(`0x${theirEntry!.lease}`).toString() });
    await handle.release();

    expect(await theirs.exited).not.toBe(0);
    expect(theirs.stdout).toBe('');
    // 3.4's Mutex.Lock returns success once the keys ahead are gone, without re-reading its own
    // key; etcdctl's own check after it catches the loss. 3.5+'s Mutex re-reads its key and fails.
    const version = /etcdctl version: (\d+\.\d+)/.exec(spawnSync(ETCDCTL_BIN, ['version'], { encoding: 'utf8' }).stdout)?.[1];
    expect(theirs.stderr).toMatch(version === '3.4' ? /lock lost on init/ : /session is expired/);
    expect(await readQueue(view, 'locks/revoked-etcdctl/')).toEqual([]);
  });
});
