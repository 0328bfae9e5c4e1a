/**
 * A candidate in its own process, for tests that kill or pause a leader.
 * Usage: node election-candidate.js <hosts> <election> <value> <ttl> [<fenced store URL>]
 * Prints JSON lines, times as process.hrtime.bigint() ns strings (CLOCK_MONOTONIC, shared by the
 * processes of one machine):
 *   {"event":"leading","token":"...","key":"...","t":"..."} once it leads.
 * With a store URL it then writes its fencing token there (resource = the election's name) and
 * works in 20 ms ticks; a tick more than 1 s late (the process was stopped) first reads
 * `leadership.signal.aborted`, then writes anyway, as code that ignores the signal would:
 *   {"event":"written","accepted":true,"t":"..."}
 *   {"event":"resumed","gapMs":N,"abortedAtFirstCheck":bool,"accepted":bool,"t":"..."}
 * Resigns and exits when stdin closes.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { EtcdElections, EtcdLockClient } from '../../lib/index.js';

const [hosts, name, value, ttl, store] = process.argv.slice(2);
const client = new EtcdLockClient({ hosts: hosts.split(','), ttl: Number(ttl) });
const say = (event: object) => process.stdout.write(`${JSON.stringify({ ...event, t: process.hrtime.bigint().toString() })}\n`);

async function storeWrite(token: bigint, note: string): Promise<boolean> {
  const response = await fetch(`${store}/write`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ resource: name, token: token.toString(), writer: value, note }),
    signal: AbortSignal.timeout(5000),
  });
  return response.status === 200;
}

await client.connect();
const leadership = await new EtcdElections(client).campaign(name, value);
say({ event: 'leading', token: leadership.fencingToken.toString(), key: leadership.key });
process.stdin.resume();
process.stdin.on('end', async () => {
  await leadership.resign();
  await client.close();
});

if (store) {
  say({ event: 'written', accepted: await storeWrite(leadership.fencingToken, 'leading') });
  const tickMs = 20;
  for (let last = performance.now(); ;) {
    await delay(tickMs);
    const gapMs = performance.now() - last - tickMs;
    last = performance.now();
    if (gapMs < 1000) continue;
    const abortedAtFirstCheck = leadership.signal.aborted;
    const accepted = await storeWrite(leadership.fencingToken, 'after-resume');
    say({ event: 'resumed', gapMs: Math.round(gapMs), abortedAtFirstCheck, accepted });
    break;
  }
}
