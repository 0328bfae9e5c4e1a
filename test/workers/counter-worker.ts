/**
 * Child process of test/core/multi-process-counter.spec.ts (run compiled, from dist/).
 *
 *   node dist/test/workers/counter-worker.js --endpoints URL[,URL] --resource NAME --counter KEY
 *        --iterations N --id ID [--hold-ms MS] [--ttl S] [--no-lock]
 *
 * Connects, prints {"type":"ready"}, waits for a "go" line on stdin (so that every worker starts
 * at once), then N times: takes the lock (unless --no-lock), reads the counter from etcd, waits
 * --hold-ms, writes counter + 1 back (a plain, non-atomic read-modify-write: only the lock makes
 * it safe), releases. Each critical section is reported as one JSON line:
 *   {"type":"section","worker":ID,"i":k,"token":"<fencing token>"|null,"read":v,"enter":"<ns>","exit":"<ns>"}
 * `enter` / `exit` are process.hrtime.bigint(), i.e. CLOCK_MONOTONIC, comparable across the
 * processes of one machine. Ends with {"type":"done"} and exit code 0; on error prints
 * {"type":"error",...} and exits 1. Exits 3 if stdin closes early (its parent is gone).
 *
 * Imports the framework-free core only: no Nest in a plain worker process.
 */
import { createInterface } from 'node:readline';
import { EtcdLockClient } from '../../lib/core/index.js';

interface Args {
  endpoints: string[];
  resource: string;
  counter: string;
  iterations: number;
  id: string;
  holdMs: number;
  ttl: number;
  lock: boolean;
}

function parseArgs(argv: string[]): Args {
  const values = new Map<string, string>();
  let lock = true;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--no-lock') lock = false;
    else if (arg.startsWith('--') && i + 1 < argv.length) values.set(arg.slice(2), argv[++i]!);
    else throw new Error(`unexpected argument ${arg}`);
  }
  const need = (name: string) => {
    const value = values.get(name);
    if (value === undefined) throw new Error(`missing --${name}`);
    return value;
  };
  return {
    endpoints: need('endpoints').split(','),
    resource: need('resource'),
    counter: need('counter'),
    iterations: Number(need('iterations')),
    id: need('id'),
    holdMs: Number(values.get('hold-ms') ?? '2'),
    ttl: Number(values.get('ttl') ?? '5'),
    lock,
  };
}

function emit(line: object): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const delay = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  let finished = false;
  const go = new Promise<void>(resolve => {
    const lines = createInterface({ input: process.stdin });
    lines.on('line', line => {
      if (line.trim() === 'go') {
        resolve();
      }
    });
    // The parent holds our stdin open for our whole life; EOF means it is gone.
    lines.on('close', () => {
      if (!finished) process.exit(3);
    });
  });

  const client = new EtcdLockClient({ hosts: args.endpoints, ttl: args.ttl, waitTimeout: 60_000 });
  await client.connect();
  const etcd = client.etcd;
  emit({ type: 'ready', worker: args.id, pid: process.pid });
  await go;

  for (let i = 0; i < args.iterations; i++) {
    const lock = args.lock ? await client.acquire(args.resource) : null;
    const enter = process.hrtime.bigint();
    const raw = await etcd.get(args.counter).string();
    const read = raw === null ? 0 : Number(raw);
    // Widen the read-modify-write window: without the lock, concurrent sections then overlap.
    await delay(args.holdMs);
    lock?.throwIfLost();
    await etcd.put(args.counter).value(String(read + 1));
    const exit = process.hrtime.bigint();
    await lock?.release();
    emit({
      type: 'section',
      worker: args.id,
      i,
      token: lock ? lock.fencingToken.toString() : null,
      read,
      enter: enter.toString(),
      exit: exit.toString(),
    });
  }
  finished = true;
  await client.close();
  emit({ type: 'done', worker: args.id });
  process.exit(0);
}

main().catch(err => {
  emit({ type: 'error', message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
  process.exit(1);
});
