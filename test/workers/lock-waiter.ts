/**
 * A lock client in its own process, for tests that need a real second process.
 * Usage: node lock-waiter.js <hosts> <prefix> <resource> <ttl>
 * Prints JSON lines: {"event":"queued"} once its key is in the queue, then
 * {"event":"acquired","token":"..."} when granted; holds the lock until stdin closes.
 */
import { EtcdLockClient } from '../../lib/index.js';

const [hosts, prefix, resource, ttl] = process.argv.slice(2);
const client = new EtcdLockClient({ hosts: hosts.split(','), prefix, ttl: Number(ttl), waitTimeout: Infinity });
const say = (event: object) => process.stdout.write(`${JSON.stringify(event)}\n`);

await client.connect();
const acquiring = client.acquire(resource);
say({ event: 'queued' });
const lock = await acquiring;
say({ event: 'acquired', token: lock.fencingToken.toString(), at: Date.now() });
process.stdin.resume();
process.stdin.on('end', async () => {
  await lock.release();
  await client.close();
});
