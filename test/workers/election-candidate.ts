/**
 * A candidate in its own process, for tests that kill a leader.
 * Usage: node election-candidate.js <hosts> <election> <value> <ttl>
 * Prints JSON lines: {"event":"leading","token":"...","key":"..."} once it leads; resigns and
 * exits when stdin closes.
 */
import { EtcdElections, EtcdLockClient } from '../../lib/index.js';

const [hosts, name, value, ttl] = process.argv.slice(2);
const client = new EtcdLockClient({ hosts: hosts.split(','), ttl: Number(ttl) });
const say = (event: object) => process.stdout.write(`${JSON.stringify(event)}\n`);

await client.connect();
const leadership = await new EtcdElections(client).campaign(name, value);
say({ event: 'leading', token: leadership.fencingToken.toString(), key: leadership.key });
process.stdin.resume();
process.stdin.on('end', async () => {
  await leadership.resign();
  await client.close();
});
