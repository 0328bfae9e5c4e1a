/**
 * Every bad input fails with a typed error and a precise message. Argument errors are
 * raised before any etcd call; etcd failures (unreachable, paused, TTL below the server minimum,
 * wrong credentials) come out as their own types, within the configured time, never as a hang.
 */
import type { Etcd3, Watcher } from 'etcd3';
import {
  EtcdAuthenticationError,
  EtcdLockClient,
  EtcdUnavailableError,
  InvalidLockArgumentError,
  LockClientClosedError,
  MAX_KEY_BYTES,
  type LockClientOptions,
} from '../../lib/core/index.js';
import { etcdctl, startEtcd, type EtcdCluster } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { countRpcs, type RpcCounter } from '../support/rpc-counter.js';
import { closedPort, observer, readQueue } from './helpers.js';

/** Runs `fn`, expecting it to throw (or reject with) exactly `type` and `message`. */
async function expectError(fn: () => unknown, type: abstract new (...args: never[]) => Error, message: string | RegExp) {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(type);
  const actual = (caught as Error).message;
  if (typeof message === 'string') expect(actual).toBe(message);
  else expect(actual).toMatch(message);
  return caught as Error;
}

function invalid(field: string, reason: string) {
  return { field, message: `Invalid ${field}: ${reason}` };
}

describe('bad input and unusable etcd', () => {
  describe('client options (thrown by the constructor)', () => {
    const hosts = 'http://127.0.0.1:2379';
    const cases: Array<[string, unknown, { field: string; message: string }]> = [
      ['unknown option', { hosts, bogus: 1 }, invalid('bogus', 'unknown option')],
      ['a typo of a known option', { hosts, waitTimout: 10 }, invalid('waitTimout', 'unknown option')],
      ['options not an object', null, invalid('options', 'expected an object, got null')],
      ['ttl 0', { hosts, ttl: 0 }, invalid('ttl', 'expected a whole number of seconds >= 1, got number 0')],
      ['ttl -1', { hosts, ttl: -1 }, invalid('ttl', 'expected a whole number of seconds >= 1, got number -1')],
      ['ttl 1.5', { hosts, ttl: 1.5 }, invalid('ttl', 'expected a whole number of seconds >= 1, got number 1.5')],
      ["ttl '10'", { hosts, ttl: '10' }, invalid('ttl', 'expected a whole number of seconds >= 1, got "10"')],
      ['ttl NaN', { hosts, ttl: NaN }, invalid('ttl', 'expected a whole number of seconds >= 1, got number NaN')],
      ['ttl Infinity', { hosts, ttl: Infinity }, invalid('ttl', 'expected a whole number of seconds >= 1, got number Infinity')],
      ['waitTimeout -1', { hosts, waitTimeout: -1 }, invalid('waitTimeout', 'expected milliseconds >= 0 or Infinity, got number -1')],
      ['waitTimeout NaN', { hosts, waitTimeout: NaN }, invalid('waitTimeout', 'expected milliseconds >= 0 or Infinity, got number NaN')],
      ["waitTimeout '100'", { hosts, waitTimeout: '100' }, invalid('waitTimeout', 'expected milliseconds >= 0 or Infinity, got "100"')],
      ['dialTimeout 0', { hosts, dialTimeout: 0 }, invalid('dialTimeout', 'expected a positive number of milliseconds, got number 0')],
      [
        'requestTimeout Infinity',
        { hosts, requestTimeout: Infinity },
        invalid('requestTimeout', 'expected a positive number of milliseconds, got number Infinity'),
      ],
      [
        'hosts without a port',
        { hosts: 'http://127.0.0.1' },
        invalid('hosts', 'expected URLs like http://127.0.0.1:2379, got "http://127.0.0.1"'),
      ],
      [
        'hosts with a path',
        { hosts: 'http://127.0.0.1:2379/v3' },
        invalid('hosts', 'expected URLs like http://127.0.0.1:2379, got "http://127.0.0.1:2379/v3"'),
      ],
      [
        'hosts of another scheme',
        { hosts: ['http://127.0.0.1:2379', 'ftp://127.0.0.1:2379'] },
        invalid('hosts', 'expected URLs like http://127.0.0.1:2379, got "ftp://127.0.0.1:2379"'),
      ],
      ['hosts an empty string', { hosts: '' }, invalid('hosts', 'expected URLs like http://127.0.0.1:2379, got ""')],
      ['hosts an empty list', { hosts: [] }, invalid('hosts', 'expected a URL or a non-empty list of URLs, got an object')],
      ['hosts a number', { hosts: 2379 }, invalid('hosts', 'expected a URL or a non-empty list of URLs, got number 2379')],
      [
        'hosts with a non-string',
        { hosts: ['http://127.0.0.1:2379', 7] },
        invalid('hosts', 'expected URLs like http://127.0.0.1:2379, got number 7'),
      ],
      [
        'auth without a user name',
        { hosts, auth: { username: '', password: 'x' } },
        invalid('auth', 'expected { username: non-empty string, password: string }'),
      ],
      [
        'auth without a password',
        { hosts, auth: { username: 'root' } },
        invalid('auth', 'expected { username: non-empty string, password: string }'),
      ],
      [
        'credentials without a Buffer',
        { hosts, credentials: { rootCertificate: 'pem' } },
        invalid('credentials', 'rootCertificate must be a Buffer'),
      ],
      ['prefix not a string', { hosts, prefix: 5 }, invalid('prefix', 'expected a string, got number 5')],
      ['logger without warn/error', { hosts, logger: { log() {} } }, invalid('logger', 'expected an object with warn() and error()')],
      [
        'client not an etcd3 client',
        { client: { kv: {} } },
        invalid('client', 'expected an Etcd3 client of the etcd3 package (1.x), got one without its connection pool'),
      ],
    ];

    it.each(cases)('%s', (_name, options, expected) => {
      let caught: unknown;
      try {
        new EtcdLockClient(options as LockClientOptions);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(InvalidLockArgumentError);
      expect({ field: (caught as InvalidLockArgumentError).field, message: (caught as Error).message }).toEqual(expected);
      expect((caught as Error).name).toBe('InvalidLockArgumentError');
    });
  });

  describe('acquisition arguments (rejected before any etcd call)', () => {
    // Its hosts point to a closed port: any etcd call would fail with EtcdUnavailableError,
    // only after the dial timeout, and would be counted.
    let client: EtcdLockClient;
    let rpcs: RpcCounter;

    beforeAll(async () => {
      client = new EtcdLockClient({ hosts: `http://127.0.0.1:${await closedPort()}`, dialTimeout: 3000, requestTimeout: 3000 });
      rpcs = countRpcs(client.etcd);
    });

    afterAll(async () => {
      rpcs?.restore();
      await client?.close();
    });

    const longest = MAX_KEY_BYTES - 'locks/'.length - '/'.length - 40; // room left for the waiter suffix
    const cases: Array<[string, unknown, object | undefined, { field: string; message: string }]> = [
      ['empty resource', '', undefined, invalid('resource', 'must not be empty')],
      ['resource a number', 42, undefined, invalid('resource', 'expected a string, got number 42')],
      ['resource null', null, undefined, invalid('resource', 'expected a string, got null')],
      ['resource undefined', undefined, undefined, invalid('resource', 'expected a string, got undefined')],
      ['resource an object', { name: 'x' }, undefined, invalid('resource', 'expected a string, got an object')],
      ['resource with a lone high surrogate', 'a\uD800', undefined, invalid('resource', 'contains a lone UTF-16 surrogate')],
      ['resource with a lone low surrogate', '\uDC00b', undefined, invalid('resource', 'contains a lone UTF-16 surrogate')],
      [
        `resource of ${longest + 1} bytes (key over ${MAX_KEY_BYTES})`,
        'x'.repeat(longest + 1),
        undefined,
        invalid('resource', `the lock key would exceed ${MAX_KEY_BYTES} bytes (resource is ${longest + 1} bytes)`),
      ],
      [
        'multi-byte resource over the limit in bytes, not in characters',
        '€'.repeat(Math.ceil((longest + 1) / 3)),
        undefined,
        invalid('resource', `the lock key would exceed ${MAX_KEY_BYTES} bytes (resource is ${3 * Math.ceil((longest + 1) / 3)} bytes)`),
      ],
      [
        "resource whose '/'s push the encoded key over the limit",
        '/'.repeat(Math.ceil((longest + 1) / 3)),
        undefined,
        invalid('resource', `the lock key would exceed ${MAX_KEY_BYTES} bytes (resource is ${Math.ceil((longest + 1) / 3)} bytes)`),
      ],
      ['empty list of resources', [], undefined, invalid('resource', 'the list of resources is empty')],
      ['list with an empty resource', ['ok', ''], undefined, invalid('resource', 'must not be empty')],
      [
        'list with a too long resource',
        ['ok', 'x'.repeat(longest + 1)],
        undefined,
        invalid('resource', `the lock key would exceed ${MAX_KEY_BYTES} bytes (resource is ${longest + 1} bytes)`),
      ],
      ['ttl 0', 'r', { ttl: 0 }, invalid('ttl', 'expected a whole number of seconds >= 1, got number 0')],
      ['ttl -1', 'r', { ttl: -1 }, invalid('ttl', 'expected a whole number of seconds >= 1, got number -1')],
      ['ttl 1.5', 'r', { ttl: 1.5 }, invalid('ttl', 'expected a whole number of seconds >= 1, got number 1.5')],
      ["ttl '10'", 'r', { ttl: '10' }, invalid('ttl', 'expected a whole number of seconds >= 1, got "10"')],
      ['ttl NaN', 'r', { ttl: NaN }, invalid('ttl', 'expected a whole number of seconds >= 1, got number NaN')],
      ['waitTimeout -1', 'r', { waitTimeout: -1 }, invalid('waitTimeout', 'expected milliseconds >= 0 or Infinity, got number -1')],
      ['waitTimeout NaN', 'r', { waitTimeout: NaN }, invalid('waitTimeout', 'expected milliseconds >= 0 or Infinity, got number NaN')],
      ['signal not an AbortSignal', 'r', { signal: { aborted: false } }, invalid('signal', 'expected an AbortSignal')],
    ];

    it.each(cases)('acquire: %s', async (_name, resource, options, expected) => {
      rpcs.reset();
      const started = performance.now();
      const err = await expectError(() => client.acquire(resource as string, options), InvalidLockArgumentError, expected.message);
      expect((err as InvalidLockArgumentError).field).toBe(expected.field);
      expect(performance.now() - started).toBeLessThan(1000); // not after a dial timeout
      expect(rpcs.calls).toEqual([]);
    });

    it.each(cases.filter(([, , options]) => !(options && 'waitTimeout' in options)))(
      'tryAcquire: %s',
      async (_name, resource, options, expected) => {
        rpcs.reset();
        await expectError(() => client.tryAcquire(resource as string, options), InvalidLockArgumentError, expected.message);
        expect(rpcs.calls).toEqual([]);
      },
    );

    it('withLock with a bad resource never runs the function', async () => {
      rpcs.reset();
      let ran = false;
      await expectError(() => client.withLock('', () => (ran = true)), InvalidLockArgumentError, 'Invalid resource: must not be empty');
      expect(ran).toBe(false);
      expect(rpcs.calls).toEqual([]);
    });

    it('acquire after close() rejects with LockClientClosedError', async () => {
      const closing = new EtcdLockClient({ hosts: `http://127.0.0.1:${await closedPort()}` });
      await closing.close();
      await expectError(() => closing.acquire('r'), LockClientClosedError, 'The lock client is closed');
      await expectError(() => closing.connect(), LockClientClosedError, 'The lock client is closed');
    });
  });

  describe('against real etcd', () => {
    let etcd: EtcdCluster;
    let slowElection: EtcdCluster;
    let withAuth: EtcdCluster;
    let view: Etcd3;

    beforeAll(async () => {
      [etcd, slowElection, withAuth] = await Promise.all([
        startEtcd(),
        // Minimum lease TTL = ceil(1.5 × election timeout) = 3 s.
        startEtcd({ extraArgs: ['--election-timeout=2000', '--heartbeat-interval=200'] }),
        startEtcd(),
      ]);
      view = observer(etcd.endpoints);
      expect(await etcdctl(withAuth.endpoints, ['user', 'add', 'root:rootpw'])).toMatchObject({ code: 0 });
      expect(await etcdctl(withAuth.endpoints, ['auth', 'enable'])).toMatchObject({ code: 0 });
    });

    afterAll(async () => {
      view?.close();
      await Promise.all([etcd?.close(), slowElection?.close(), withAuth?.close()]);
    });

    it('the longest resource that fits is accepted by etcd', async () => {
      const client = new EtcdLockClient({ hosts: etcd.endpoints });
      try {
        const longest = MAX_KEY_BYTES - 'locks/'.length - '/'.length - 40;
        const lock = await client.acquire('x'.repeat(longest));
        expect(Buffer.byteLength(lock.key)).toBeLessThanOrEqual(MAX_KEY_BYTES);
        await lock.release();
      } finally {
        await client.close();
      }
    });

    it('a TTL below the server minimum is refused (InvalidLockArgumentError naming ttl), leaving no lease', async () => {
      const minimum = (await etcdctl(slowElection.endpoints, ['lease', 'grant', '1'])).stdout;
      expect(minimum).toMatch(/granted with TTL\(3s\)/);
      await etcdctl(slowElection.endpoints, ['lease', 'revoke', minimum.split(' ')[1]!]);

      const client = new EtcdLockClient({ hosts: slowElection.endpoints, ttl: 1 });
      try {
        const err = await expectError(
          () => client.connect(),
          InvalidLockArgumentError,
          "Invalid ttl: 1 s is below this etcd cluster's minimum lease TTL (it granted 3 s); use ttl >= 3",
        );
        expect((err as InvalidLockArgumentError).field).toBe('ttl');
        // The over-long lease it was granted has been revoked.
        const leases = await etcdctl(slowElection.endpoints, ['lease', 'list']);
        expect(leases.stdout.trim()).toBe('found 0 leases');
        // acquire() refuses the same way, and queues nothing.
        await expectError(() => client.acquire('r'), InvalidLockArgumentError, /^Invalid ttl: 1 s is below this etcd cluster's minimum/);
      } finally {
        await client.close();
      }

      const ok = new EtcdLockClient({ hosts: slowElection.endpoints, ttl: 3 });
      try {
        await ok.connect();
        expect(ok.status()).toMatchObject({ state: 'alive', grantedTtl: 3 });
        // A per-acquisition TTL below the minimum is refused too, and writes no key.
        await expectError(() => ok.acquire('per-call', { ttl: 2 }), InvalidLockArgumentError, /^Invalid ttl: 2 s is below/);
        expect((await etcdctl(slowElection.endpoints, ['get', '--prefix', 'locks/'])).stdout).toBe('');
        const lock = await ok.acquire('per-call');
        await lock.release();
      } finally {
        await ok.close();
      }
    });

    it('connect() to a closed port: EtcdUnavailableError within dialTimeout', async () => {
      const client = new EtcdLockClient({ hosts: `http://127.0.0.1:${await closedPort()}`, dialTimeout: 1000 });
      try {
        const started = performance.now();
        await expectError(() => client.connect(), EtcdUnavailableError, /^etcd unavailable: granting the session lease: /);
        const elapsed = performance.now() - started;
        console.log(`[bad input] closed port: EtcdUnavailableError after ${elapsed.toFixed(0)} ms (dialTimeout 1000)`);
        expect(elapsed).toBeLessThan(1000 + 500);
        expect(client.status().state).toBe('idle');
      } finally {
        await client.close();
      }
    });

    it('connect() to a paused (blackholed) etcd: EtcdUnavailableError within dialTimeout, then works after resume', async () => {
      const member = etcd.members[0]!;
      const client = new EtcdLockClient({ hosts: etcd.endpoints, dialTimeout: 1000 });
      member.pause();
      try {
        const started = performance.now();
        await expectError(() => client.connect(), EtcdUnavailableError, /^etcd unavailable: granting the session lease: /);
        const elapsed = performance.now() - started;
        console.log(`[bad input] paused etcd: EtcdUnavailableError after ${elapsed.toFixed(0)} ms (dialTimeout 1000)`);
        expect(elapsed).toBeGreaterThanOrEqual(950);
        expect(elapsed).toBeLessThan(1000 + 500);
      } finally {
        member.resume();
      }
      try {
        // The failure is not sticky: once etcd answers, the same client connects.
        await waitFor(
          async () => {
            await client.connect();
            return true;
          },
          { timeoutMs: 10_000, message: 'connect() succeeds after resume' },
        );
        expect(client.status().state).toBe('alive');
      } finally {
        await client.close();
      }
    });

    it('etcd paused during an acquisition: EtcdUnavailableError within requestTimeout, and no key left after resume', async () => {
      const member = etcd.members[0]!;
      const client = new EtcdLockClient({ hosts: etcd.endpoints, ttl: 5, requestTimeout: 1000 });
      let watcher: Watcher | undefined;
      try {
        await client.connect();
        // Count the puts of the failed acquisition's key that etcd applies after all.
        let puts = 0;
        watcher = await view.watch().prefix('locks/paused-acquire/').create();
        watcher.on('put', () => puts++);
        member.pause();
        const started = performance.now();
        try {
          await expectError(
            () => client.acquire('paused-acquire'),
            EtcdUnavailableError,
            /^etcd unavailable: acquiring lock "paused-acquire": /,
          );
        } finally {
          member.resume();
        }
        const elapsed = performance.now() - started;
        expect(elapsed).toBeLessThan(1000 + 500);
        // The put may have reached etcd after we gave up: the client deletes it in the background.
        await waitFor(async () => (await readQueue(view, 'locks/paused-acquire/')).length === 0, {
          timeoutMs: 5000,
          message: 'no key left for the failed acquisition',
        });
        console.log(
          `[bad input] acquire on a paused etcd: EtcdUnavailableError after ${elapsed.toFixed(0)} ms (requestTimeout 1000); ${puts} put(s) of its key reached etcd after resume`,
        );
        // The client's circuit breaker opened during the outage; it lets calls through again
        // after 500 ms. Then the same client takes the lock.
        await waitFor(
          async () => {
            await client.ping(500);
            return true;
          },
          { timeoutMs: 5000, message: 'the client reaches etcd again' },
        );
        const lock = await client.acquire('paused-acquire', { waitTimeout: 3000 });
        await lock.release();
      } finally {
        member.resume();
        await watcher?.cancel();
        await client.close();
      }
    });

    it('wrong credentials: EtcdAuthenticationError (the right ones work)', async () => {
      const good = new EtcdLockClient({ hosts: withAuth.endpoints, auth: { username: 'root', password: 'rootpw' } });
      try {
        await good.connect();
        const lock = await good.acquire('authed');
        await lock.release();
      } finally {
        await good.close();
      }

      for (const auth of [
        { username: 'root', password: 'wrong' },
        { username: 'nobody', password: 'rootpw' },
      ]) {
        const client = new EtcdLockClient({ hosts: withAuth.endpoints, auth, dialTimeout: 3000 });
        try {
          const started = performance.now();
          await expectError(
            () => client.connect(),
            EtcdAuthenticationError,
            /^etcd refused the credentials: granting the session lease: .*authentication failed/,
          );
          expect(performance.now() - started).toBeLessThan(3000);
        } finally {
          await client.close();
        }
      }
    });

    it('no credentials against an etcd with auth: the first lock fails with EtcdAuthenticationError', async () => {
      const client = new EtcdLockClient({ hosts: withAuth.endpoints, dialTimeout: 3000, requestTimeout: 3000 });
      try {
        // etcd 3.4 grants leases without authentication, so connect() itself may succeed here;
        // the first write under the lock prefix is refused.
        await client.connect().catch(() => undefined);
        const started = performance.now();
        await expectError(() => client.acquire('anonymous'), EtcdAuthenticationError, /^etcd refused the credentials: /);
        expect(performance.now() - started).toBeLessThan(3000);
      } finally {
        await client.close();
      }
    });
  });
});
