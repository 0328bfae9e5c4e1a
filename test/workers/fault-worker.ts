/**
 * A lock client in its own process, driven by the fault suite (test/faults) over stdin, reporting
 * over stdout (the protocol's types: fault-protocol.ts). Run compiled, from dist/:
 *
 *   node dist/test/workers/fault-worker.js --id ID --endpoints URL[,URL...] --store URL
 *        [--ttl S] [--prefix P] [--request-timeout MS] [--dial-timeout MS] [--broken release-early]
 *
 * Prints {"type":"ready","pid":...} once connected (lease granted). Then reads one JSON command
 * per line on stdin and answers with JSON lines. Every time is process.hrtime.bigint() (ns, as a
 * string): CLOCK_MONOTONIC, comparable between the processes of one machine.
 *
 *   {"cmd":"acquire","resource":R,"waitTimeout":MS,"shared":B,"permits":N}   (shared, permits: the
 *          lock's mode, as in client.acquire; absent: exclusive; contend takes them too)
 *       -> {"type":"acquired",resource,token,key,lease,t,seenRevision}   (seenRevision: the etcd
 *          revision of a linearizable read of our key made right after the grant)
 *       or {"type":"acquire-failed",resource,error,message,t}
 *   {"cmd":"write","resource":R,"note":N}     -> {"type":"write",resource,token,accepted,t}
 *       (POSTs the held lock's fencing token to the fenced store)
 *   {"cmd":"release","resource":R}            -> {"type":"released",resource,t}
 *   {"cmd":"hold","resource":R,"tickMs":MS,"gapMs":MS}
 *       Holds the lock doing "work" in ticks of tickMs. When a tick comes more than gapMs late
 *       (the process was stopped), its FIRST action is to read lock.signal.aborted; then, like code
 *       that ignores the signal, it writes to the store anyway. Reports
 *       -> {"type":"resumed",resource,gapMs,abortedAtFirstCheck,lostEventBeforeCheck,throwIfLost,write:{accepted},t}
 *   {"cmd":"contend","resource":R,"iterations":N,"holdMs":MS,"waitTimeout":MS,"deadlineMs":MS,"shared":B,"permits":N}
 *       N critical sections: acquire, write "enter", wait holdMs, write "exit", release. A failed
 *       acquisition (etcd unavailable, timeout) is reported and retried until deadlineMs.
 *       -> {"type":"section",resource,token,key,enter,exit,seenRevision,writes:[accepted...],lost}
 *       -> {"type":"contend-done",resource,sections,failures}
 *   {"cmd":"stop-contending"}                 ends a running "contend" after its current section
 *   {"cmd":"schedule","ops":[...],"deadlineMs":MS}
 *       runs one worker's operations of the seeded random schedule: see schedule-runner.ts
 *       (--broken release-early makes it a holder that gives its locks back at once: the
 *       checker's negative test)
 *   {"cmd":"close"}                           -> {"type":"closed"} and exit 0
 *
 * Always: {"type":"lost",resource,token,reason,t} when a held lock's signal aborts, and
 * {"type":"error",message} (exit 1) on an unexpected failure. Exits 3 when stdin closes early
 * (its parent is gone).
 */
import http from 'node:http';
import { createInterface } from 'node:readline';
import { EtcdLockClient, type LockHandle } from '../../lib/core/index.js';
import { LockService } from '../../lib/nest/lock.service.js';
import type { FaultCommand, FaultMessageBody, ModeOptions } from './fault-protocol.js';
import { runSchedule } from './schedule-runner.js';

interface Args {
  id: string;
  endpoints: string[];
  store: string;
  ttl: number;
  prefix: string;
  requestTimeout: number;
  dialTimeout: number;
  broken?: 'release-early';
}

function parseArgs(argv: string[]): Args {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i]!;
    if (!name.startsWith('--') || i + 1 >= argv.length) throw new Error(`unexpected argument ${name}`);
    values.set(name.slice(2), argv[i + 1]!);
  }
  const need = (name: string) => {
    const value = values.get(name);
    if (value === undefined) throw new Error(`missing --${name}`);
    return value;
  };
  return {
    id: need('id'),
    endpoints: need('endpoints').split(','),
    store: need('store'),
    ttl: Number(values.get('ttl') ?? '2'),
    prefix: values.get('prefix') ?? 'locks/',
    requestTimeout: Number(values.get('request-timeout') ?? '2000'),
    dialTimeout: Number(values.get('dial-timeout') ?? '5000'),
    ...(values.get('broken') === 'release-early' ? { broken: 'release-early' as const } : {}),
  };
}

const args = parseArgs(process.argv.slice(2));
const now = () => process.hrtime.bigint().toString();
const emit = (line: FaultMessageBody) => process.stdout.write(`${JSON.stringify({ worker: args.id, ...line })}\n`);
const delay = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));
const describeError = (err: unknown) => ({
  error: err instanceof Error ? err.name : typeof err,
  message: err instanceof Error ? err.message : String(err),
});

const client = new EtcdLockClient({
  hosts: args.endpoints,
  prefix: args.prefix,
  ttl: args.ttl,
  requestTimeout: args.requestTimeout,
  dialTimeout: args.dialTimeout,
  waitTimeout: 60_000,
});
const held = new Map<string, LockHandle>();
/** Resources whose signal has fired (set by the abort listener, i.e. by a timer or an audit). */
const lostEvents = new Set<LockHandle>();
let finished = false;
let stopContending = false;

/** A keep-alive agent: one loopback connection to the store, so a write costs one round trip. */
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

function storeWrite(resource: string, token: bigint, note: string): Promise<boolean> {
  const body = JSON.stringify({ resource, token: token.toString(), writer: args.id, note });
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${args.store}/write`,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      res => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('the fenced store did not answer within 5 s')));
    req.end(body);
  });
}

/** The revision of a linearizable read of our key right after the grant (for the history check). */
async function seenRevision(key: string): Promise<string | undefined> {
  try {
    const res = await client.etcd.kv.range({ key: Buffer.from(key) }, { deadline: Date.now() + args.requestTimeout });
    return res.kvs.length === 1 ? res.header.revision : undefined;
  } catch {
    return undefined;
  }
}

function watchLoss(lock: LockHandle): void {
  const signal = lock.signal;
  const onAbort = () => {
    lostEvents.add(lock);
    const reason = signal.reason as Error | undefined;
    emit({ type: 'lost', resource: lock.resource, token: lock.fencingToken.toString(), reason: reason?.message, t: now() });
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
}

async function acquire(resource: string, waitTimeout: number | undefined, mode: ModeOptions): Promise<LockHandle> {
  const lock = await client.acquire(resource, { waitTimeout: waitTimeout ?? 30_000, shared: mode.shared, permits: mode.permits });
  const t = now();
  watchLoss(lock);
  return Object.assign(lock, { grantedAt: t });
}

function heldLock(resource: string): LockHandle {
  const lock = held.get(resource);
  if (!lock) throw new Error(`no lock held on ${resource}`);
  return lock;
}

async function run(command: FaultCommand): Promise<void> {
  const resource = command.resource ?? '';
  switch (command.cmd) {
    case 'acquire': {
      try {
        const lock = await acquire(resource, command.waitTimeout, command);
        const t = (lock as LockHandle & { grantedAt: string }).grantedAt;
        held.set(resource, lock);
        emit({
          type: 'acquired',
          resource,
          token: lock.fencingToken.toString(),
          key: lock.key,
          lease: lock.leaseId,
          t,
          seenRevision: await seenRevision(lock.key),
        });
      } catch (err) {
        emit({ type: 'acquire-failed', resource, ...describeError(err), t: now() });
      }
      return;
    }
    case 'write': {
      const lock = heldLock(resource);
      const accepted = await storeWrite(resource, lock.fencingToken, command.note ?? 'write');
      emit({ type: 'write', resource, token: lock.fencingToken.toString(), accepted, t: now() });
      return;
    }
    case 'release': {
      const lock = heldLock(resource);
      held.delete(resource);
      await lock.release();
      emit({ type: 'released', resource, t: now() });
      return;
    }
    case 'hold':
      await hold(resource, command.tickMs ?? 20, command.gapMs ?? 1000);
      return;
    case 'contend':
      await contend(
        resource,
        command.iterations,
        command.holdMs ?? 5,
        command.waitTimeout ?? 30_000,
        command.deadlineMs ?? 60_000,
        command,
      );
      return;
    case 'stop-contending':
      stopContending = true;
      return;
    case 'schedule':
      await runSchedule(
        { client, service: new LockService(client), emit, now, storeWrite, seenRevision, ...(args.broken ? { broken: args.broken } : {}) },
        command.ops,
        command.deadlineMs ?? 60_000,
      );
      return;
    case 'close':
      finished = true;
      await client.close();
      emit({ type: 'closed' });
      process.exit(0);
      return;
    default:
      throw new Error(`unknown command ${JSON.stringify(command satisfies never)}`);
  }
}

async function hold(resource: string, tickMs: number, gapMs: number): Promise<void> {
  const lock = heldLock(resource);
  // Take the first timestamp BEFORE announcing it: the test stops us as soon as it reads
  // "holding", possibly before this process runs its next statement.
  let last = performance.now();
  emit({ type: 'holding', resource, t: now() });
  for (;;) {
    await delay(tickMs);
    const at = performance.now();
    const late = at - last - tickMs;
    last = at;
    if (late < gapMs) continue;
    // Resumed after a stop. First thing: is the lock still ours? Nothing else ran before this
    // line in this callback; whether the session's own timers ran first is reported too.
    const lostEventBeforeCheck = lostEvents.has(lock);
    const abortedAtFirstCheck = lock.signal.aborted;
    let throwIfLost = 'none';
    try {
      lock.throwIfLost();
    } catch (err) {
      throwIfLost = err instanceof Error ? err.name : String(err);
    }
    // Code that ignores the signal and writes anyway: only the fenced store can stop it.
    const accepted = await storeWrite(resource, lock.fencingToken, 'after-resume');
    emit({
      type: 'resumed',
      resource,
      gapMs: Math.round(late),
      abortedAtFirstCheck,
      lostEventBeforeCheck,
      throwIfLost,
      write: { accepted },
      t: now(),
    });
    return;
  }
}

async function contend(
  resource: string,
  iterations: number,
  holdMs: number,
  waitTimeout: number,
  deadlineMs: number,
  mode: ModeOptions,
): Promise<void> {
  const deadline = performance.now() + deadlineMs;
  let sections = 0;
  let failures = 0;
  stopContending = false;
  while (sections < iterations && performance.now() < deadline && !stopContending) {
    let lock: LockHandle;
    try {
      lock = await acquire(resource, waitTimeout, mode);
    } catch (err) {
      failures++;
      emit({ type: 'acquire-failed', resource, ...describeError(err), t: now() });
      await delay(50);
      continue;
    }
    const enter = (lock as LockHandle & { grantedAt: string }).grantedAt;
    const writes: boolean[] = [];
    let revision: string | undefined;
    try {
      revision = await seenRevision(lock.key);
      writes.push(await storeWrite(resource, lock.fencingToken, 'enter'));
      await delay(holdMs);
      writes.push(await storeWrite(resource, lock.fencingToken, 'exit'));
    } finally {
      const exit = now();
      const lost = lostEvents.has(lock) || lock.signal.aborted;
      await lock.release();
      sections++;
      emit({
        type: 'section',
        resource,
        token: lock.fencingToken.toString(),
        key: lock.key,
        enter,
        exit,
        seenRevision: revision,
        writes,
        lost,
      });
    }
  }
  emit({ type: 'contend-done', resource, sections, failures });
}

async function main(): Promise<void> {
  await client.connect();
  emit({ type: 'ready', pid: process.pid });
  const lines = createInterface({ input: process.stdin });
  lines.on('close', () => {
    if (!finished) process.exit(3);
  });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    // Commands run concurrently (a "hold" does not block a later "write" on another resource).
    void run(JSON.parse(line) as FaultCommand).catch(err => {
      emit({ type: 'error', ...describeError(err) });
      process.exit(1);
    });
  }
}

main().catch(err => {
  emit({ type: 'error', ...describeError(err) });
  process.exit(1);
});
