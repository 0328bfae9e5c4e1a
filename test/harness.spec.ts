/**
 * Proves the integration-test harness against REAL etcd processes.
 * The watchdog test runs a compiled worker: `npm run build` first.
 */
import { once } from 'node:events';
import fs from 'node:fs';
import { ETCD_BIN, etcdctl, requestHealth, spawnEtcdctl, startEtcd, startEtcdCluster, type EtcdCluster } from './support/etcd.js';
import { startWorker } from './support/node-process.js';
import { isAlive, readRegistry } from './support/pid-registry.js';
import { waitFor } from './support/wait.js';

function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('etcd test harness', () => {
  const clusters: EtcdCluster[] = [];
  afterAll(async () => {
    await Promise.all(clusters.map(c => c.close()));
  });

  it('uses an etcd binary', () => {
    expect(ETCD_BIN).toMatch(/etcd$/);
  });

  it("a failing start rejects with etcd's last output lines and leaves nothing behind", async () => {
    await expect(startEtcd({ extraArgs: ['--no-such-flag'] })).rejects.toThrow(
      /exited during startup[\s\S]*flag provided but not defined: -no-such-flag/,
    );
    // Nothing of ours is registered (nor alive) any more.
    expect(readRegistry().filter(e => e.owner === process.pid && isAlive(e.pid))).toEqual([]);
  });

  it('a SIGKILLed test process leaves no etcd behind: its watchdog kills it and removes its data', async () => {
    const owner = startWorker('harness-owner', []);
    const started = (await owner.next(m => m.event === 'started', 30_000)) as { etcdPid: number; watchdogPid: number; dataDir: string };
    expect(isAlive(started.etcdPid)).toBe(true);
    expect(isAlive(started.watchdogPid)).toBe(true);
    await owner.kill(); // SIGKILL: no exit hook of the owner runs
    await waitFor(() => !isAlive(started.etcdPid), { timeoutMs: 10_000, message: `etcd ${started.etcdPid} killed by the watchdog` });
    await waitFor(() => !isAlive(started.watchdogPid), { timeoutMs: 10_000, message: 'the watchdog exits once done' });
    expect(readRegistry().filter(e => e.pid === started.etcdPid)).toEqual([]);
    expect(fs.existsSync(started.dataDir)).toBe(false);
  });

  describe('single member', () => {
    let etcd: EtcdCluster;
    beforeAll(async () => {
      etcd = await startEtcd();
      clusters.push(etcd);
    });

    it('starts one healthy member on a loopback port', async () => {
      expect(etcd.members).toHaveLength(1);
      expect(etcd.endpoints).toEqual([etcd.members[0]!.clientUrl]);
      expect(etcd.members[0]!.clientUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(await requestHealth(etcd.endpoints[0]!)).toMatchObject({ health: 'true' });
      expect(await etcd.leader()).toBe(etcd.members[0]);
    });

    it('put/get works through etcdctl()', async () => {
      const put = await etcdctl(etcd.endpoints, ['put', 'harness/key', 'hello']);
      expect(put).toMatchObject({ code: 0 });
      expect(put.stdout.trim()).toBe('OK');
      const get = await etcdctl(etcd.endpoints, ['get', 'harness/key', '--print-value-only']);
      expect(get.code).toBe(0);
      expect(get.stdout.trim()).toBe('hello');
    });

    it('reports a non-zero exit code instead of rejecting', async () => {
      const res = await etcdctl(etcd.endpoints, ['no-such-command']);
      expect(res.code).not.toBe(0);
    });

    it('grants leases with a minimum TTL of 1 s', async () => {
      const res = await etcdctl(etcd.endpoints, ['lease', 'grant', '0']);
      expect(res.code).toBe(0);
      expect(res.stdout).toMatch(/granted with TTL\(1s\)/);
    });

    it('pause() stops answering /health, resume() answers again', async () => {
      const member = etcd.members[0]!;
      member.pause();
      await expect(requestHealth(member.clientUrl, 300)).rejects.toThrow(/timed out/);
      member.resume();
      await waitFor(async () => (await requestHealth(member.clientUrl, 1000)).health === 'true', {
        timeoutMs: 5000,
        message: 'member healthy again after resume()',
      });
    });
  });

  describe('3-member cluster', () => {
    let cluster: EtcdCluster;
    beforeAll(async () => {
      cluster = await startEtcdCluster(3);
      clusters.push(cluster);
    });

    it('starts three healthy members with distinct ports, PIDs and data dirs', async () => {
      expect(cluster.members).toHaveLength(3);
      expect(new Set(cluster.endpoints).size).toBe(3);
      expect(new Set(cluster.members.map(m => m.peerUrl)).size).toBe(3);
      expect(new Set(cluster.members.map(m => m.pid)).size).toBe(3);
      expect(new Set(cluster.members.map(m => m.dataDir)).size).toBe(3);
      for (const m of cluster.members) {
        expect(m.isRunning()).toBe(true);
        expect(await requestHealth(m.clientUrl)).toMatchObject({ health: 'true' });
      }
      const list = await etcdctl(cluster.endpoints, ['member', 'list']);
      expect(list.code).toBe(0);
      expect(list.stdout.trim().split('\n')).toHaveLength(3);
    });

    it('leader() returns a member; killing it elects a new leader; restart() keeps the data', async () => {
      const put = await etcdctl(cluster.endpoints, ['put', 'harness/durable', 'v1']);
      expect(put.code).toBe(0);

      const oldLeader = await cluster.leader();
      expect(cluster.members).toContain(oldLeader);
      const oldPid = oldLeader.pid;

      await oldLeader.kill();
      expect(oldLeader.isRunning()).toBe(false);
      expect(isPidAlive(oldPid)).toBe(false);

      let newLeader: unknown;
      await waitFor(
        async () => {
          newLeader = await cluster.leader({ timeoutMs: 500 });
          return newLeader !== oldLeader;
        },
        { timeoutMs: 10_000, message: 'a new leader is elected after killing the old one' },
      );
      expect(cluster.members).toContain(newLeader);

      // The survivors still have quorum.
      const put2 = await etcdctl(cluster.endpoints, ['put', 'harness/after-failover', 'v2']);
      expect(put2.code).toBe(0);

      await oldLeader.restart();
      expect(oldLeader.isRunning()).toBe(true);
      expect(oldLeader.pid).not.toBe(oldPid);
      expect(await requestHealth(oldLeader.clientUrl)).toMatchObject({ health: 'true' });

      // Serializable reads are answered from the restarted member's own store.
      const read = (key: string) => etcdctl([oldLeader.clientUrl], ['get', key, '--print-value-only', '--consistency=s']);
      expect((await read('harness/durable')).stdout.trim()).toBe('v1');
      await waitFor(async () => (await read('harness/after-failover')).stdout.trim() === 'v2', {
        timeoutMs: 5000,
        message: 'restarted member catches up with writes made while it was down',
      });
    });

    it('a paused member does not answer /health until resumed', async () => {
      const follower = cluster.members.find(m => m.isRunning())!;
      follower.pause();
      await expect(requestHealth(follower.clientUrl, 300)).rejects.toThrow(/timed out/);
      follower.resume();
      await waitFor(async () => (await requestHealth(follower.clientUrl, 1000)).health === 'true', {
        timeoutMs: 10_000,
        message: 'paused member healthy again after resume()',
      });
    });

    it('close() leaves no PID alive (even a paused member or an etcdctl lock holder) and is idempotent', async () => {
      const holder = spawnEtcdctl(cluster.endpoints, ['lock', 'harness-lock']);
      await once(holder.stdout!, 'data'); // prints the lock key once acquired
      const holderExit = once(holder, 'exit');
      cluster.members[1]!.pause();
      const pids = [...cluster.members.map(m => m.pid), holder.pid!];
      const dirs = cluster.members.map(m => m.dataDir);
      await cluster.close();
      await cluster.close();
      for (const pid of pids) {
        expect(() => process.kill(pid, 0)).toThrow();
      }
      for (const m of cluster.members) expect(m.isRunning()).toBe(false);
      await holderExit;
      for (const dir of dirs) expect(fs.existsSync(dir)).toBe(false);
    });
  });
});
