/**
 * Fault class "auth": etcd with auth on and a 3 s simple-token TTL, clients idle longer than that.
 * etcd3 keeps one watch stream per client with the token it was opened with; once that token has
 * expired etcd refuses every new watch on the stream (created+canceled, permission denied) and
 * etcd3 never sends another create. A waiter must still be woken, a holder keep renewing, and a
 * release free the lock.
 */
import { jest } from '@jest/globals';
import { EtcdLockClient, type LockHandle } from '../../lib/index.js';
import { enableAuth, startEtcd, type EtcdCluster } from '../support/etcd.js';

jest.setTimeout(60_000);

const TOKEN_TTL_S = 3;
const IDLE_MS = 2 * TOKEN_TTL_S * 1000;
const PREFIX = 'auth/';

describe('fault class: auth token expiry (real etcd, --auth-token-ttl 3)', () => {
  let etcd: EtcdCluster;
  let auth: { username: string; password: string };
  const clients: EtcdLockClient[] = [];

  function client(): EtcdLockClient {
    const c = new EtcdLockClient({ hosts: etcd.endpoints, auth, prefix: PREFIX, ttl: 3, requestTimeout: 2000 });
    clients.push(c);
    return c;
  }

  beforeAll(async () => {
    etcd = await startEtcd({ extraArgs: [`--auth-token-ttl=${TOKEN_TTL_S}`] });
    auth = await enableAuth(etcd.endpoints);
  });
  afterAll(async () => {
    await Promise.all(clients.map(c => c.close()));
    await etcd?.close();
  });

  /** The holder releases 100 ms into the wait; resolves with how long the waiter waited (ms). */
  async function contendedRound(holder: EtcdLockClient, waiter: EtcdLockClient, resource: string): Promise<number> {
    const held = await holder.acquire(resource);
    const started = performance.now();
    const waiting = waiter.acquire(resource, { waitTimeout: 4000 });
    setTimeout(() => void held.release(), 100);
    const granted = await waiting;
    const waitedMs = performance.now() - started;
    await granted.release();
    return waitedMs;
  }

  it("wakes waiters after the watch stream's token expired", async () => {
    const holder = client();
    const waiter = client();
    await Promise.all([holder.connect(), waiter.connect()]);
    const first = await contendedRound(holder, waiter, 'r'); // opens the waiter's watch stream
    await new Promise(resolve => setTimeout(resolve, IDLE_MS)); // the stream's token expires
    const rounds: Array<number | string> = [];
    for (let round = 0; round < 3; round++) {
      rounds.push(await contendedRound(holder, waiter, 'r').catch((err: Error) => err.name));
    }
    console.log(
      `auth: first wait ${first.toFixed(0)} ms; after ${IDLE_MS} ms idle: ${rounds.map(r => (typeof r === 'number' ? `${r.toFixed(0)} ms` : r)).join(', ')}`,
    );
    for (const waited of rounds) {
      expect(typeof waited).toBe('number');
      // Woken through a rebuilt watch stream: sooner than the periodic re-read (every 750–1250 ms at TTL 3).
      expect(waited as number).toBeLessThan(700);
    }
  });

  it('keeps a held lock renewed through token expiry, and its release frees the lock', async () => {
    const holder = client();
    const other = client();
    const held: LockHandle = await holder.acquire('held');
    await new Promise(resolve => setTimeout(resolve, IDLE_MS));
    expect(held.signal.aborted).toBe(false);
    expect(holder.status().state).toBe('alive');
    const waiting = other.acquire('held', { waitTimeout: 4000 });
    await held.release();
    const next = await waiting;
    await next.release();
    expect((await other.inspect('held')).holder).toBeUndefined();
  });
});
