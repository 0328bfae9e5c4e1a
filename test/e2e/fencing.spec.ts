/**
 * The fencing token, end to end: an instance holding a seat's lock is frozen (SIGSTOP) past its
 * lease TTL, another instance takes the lock and books the seat; when the frozen one wakes up
 * (SIGCONT) and finishes its booking, the fenced store refuses its late write, and the seat
 * stays with the newer holder.
 */
import { jest } from '@jest/globals';
import { Etcd3 } from 'etcd3';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { getJson, requestJson } from '../../sample-app/demo/http-json.js';
import { stopAllSampleApps } from '../../sample-app/demo/sample-app-process.js';
import { startFleet, type Fleet } from './fleet.js';

jest.setTimeout(60_000);

const LOCK_TTL_S = 2;

describe('sample-app: a holder paused past its lease cannot overwrite the next holder (fencing)', () => {
  let etcd: EtcdCluster;
  let observer: Etcd3;
  let fleet: Fleet;

  beforeAll(async () => {
    etcd = await startEtcd();
    observer = new Etcd3({ hosts: etcd.endpoints });
    fleet = await startFleet(2, etcd.endpoints, { name: 'fencing', lockTtl: LOCK_TTL_S, env: { AUDIT_INTERVAL_MS: '0' } });
  });
  afterAll(async () => {
    await stopAllSampleApps();
    observer?.close();
    await etcd?.close();
  });

  it("refuses the stale holder's late write; the seat keeps the newer holder's booking", async () => {
    const [stale, fresh] = fleet.instances;

    // The stale holder takes the seat's lock, reads the seat (free) and starts working.
    const staleReply = requestJson('POST', `${stale.url}/seats/F1/book-slowly`, { customer: 'stale-holder', holdMs: 3000 }, 30_000);
    await waitFor(() => stale.output().includes('seat F1 is free; working'), { message: 'the stale holder is working under the lock' });
    const lockKeys = await observer.getAll().prefix(`${fleet.lockPrefix}seat:F1/`).exec();
    expect(lockKeys.kvs).toHaveLength(1);
    const staleToken = BigInt(lockKeys.kvs[0].create_revision);

    // Frozen: no lease renewal. Once etcd expires the lease, the other instance gets the lock.
    stale.pause();
    const freshReply = await requestJson('POST', `${fresh.url}/seats/F1/book`, { customer: 'fresh-holder' }, 30_000);
    expect(freshReply.status).toBe(201);
    expect(freshReply.body.bookedBy).toBe('fresh-holder');
    const freshToken = BigInt(freshReply.body.fencingToken as string);
    expect(freshToken).toBeGreaterThan(staleToken);

    // Woken up, the stale holder learns its lock is gone (503) and its late write is refused.
    stale.resume();
    const reply = await staleReply;
    expect([503, 409]).toContain(reply.status);
    await waitFor(async () => (await fleet.fencingReports())[0].staleWritesRefused === 1, {
      message: () => `the stale instance reports the refused write; its output:\n${stale.output().slice(-2000)}`,
    });
    const [staleReport] = await fleet.fencingReports();
    expect(staleReport.lastRefusal).toBe(
      `write to "seats/F1" refused: fencing token ${staleToken} is older than ${freshToken}, written by a later lock holder`,
    );

    expect(await getJson(`${fresh.url}/seats/F1`)).toMatchObject({ bookedBy: 'fresh-holder' });
    expect(await getJson(`${stale.url}/seats/F1`)).toMatchObject({ bookedBy: 'fresh-holder' });
  });
});
