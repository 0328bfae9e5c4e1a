/**
 * Several PROCESSES increment one counter kept in etcd, with a plain (non-atomic)
 * read-modify-write inside the lock. No update is lost, grants follow create-revision order and
 * no two critical sections overlap; the same workers without the lock do lose updates.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { observer } from './helpers.js';
import type { Etcd3 } from 'etcd3';

const WORKER = fileURLToPath(new URL('../../dist/test/workers/counter-worker.js', import.meta.url));
const WORKERS = 4;
const ITERATIONS = 12;
const TOTAL = WORKERS * ITERATIONS;

interface Section {
  worker: string;
  i: number;
  token: string | null;
  read: number;
  enter: bigint;
  exit: bigint;
}

interface Worker {
  child: ChildProcess;
  ready: Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  sections: Section[];
  stderr: () => string;
}

const children = new Set<ChildProcess>();

function startWorker(endpoints: string[], id: string, extra: string[]): Worker {
  const child = spawn(process.execPath, [WORKER, '--endpoints', endpoints.join(','), '--id', id, ...extra], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  const sections: Section[] = [];
  let stderr = '';
  let resolveReady!: () => void;
  let rejectReady!: (err: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ready.catch(() => undefined);
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      const msg = JSON.parse(line) as Record<string, unknown>;
      if (msg.type === 'ready') resolveReady();
      else if (msg.type === 'section') {
        sections.push({
          worker: msg.worker as string,
          i: msg.i as number,
          token: msg.token as string | null,
          read: msg.read as number,
          enter: BigInt(msg.enter as string),
          exit: BigInt(msg.exit as string),
        });
      } else if (msg.type === 'error') stderr += `[reported] ${String(msg.message)}\n`;
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(resolve =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      rejectReady(new Error(`worker ${id} exited (${code ?? signal}) before it was ready: ${stderr}`));
      resolve({ code, signal });
    }),
  );
  return { child, ready, exited, sections, stderr: () => stderr };
}

/** Starts the workers, lets them all go at once, waits for them to finish; returns every section. */
async function runWorkers(endpoints: string[], name: string, lock: boolean): Promise<Section[]> {
  const args = ['--resource', name, '--counter', `counter/${name}`, '--iterations', String(ITERATIONS), '--hold-ms', '3'];
  if (!lock) args.push('--no-lock');
  const workers = Array.from({ length: WORKERS }, (_, i) => startWorker(endpoints, `w${i}`, args));
  await Promise.all(workers.map(w => w.ready));
  for (const w of workers) w.child.stdin!.write('go\n');
  const results = await Promise.all(workers.map(w => w.exited));
  results.forEach((result, i) => {
    expect({ worker: i, ...result, stderr: workers[i]!.stderr() }).toEqual({ worker: i, code: 0, signal: null, stderr: '' });
  });
  const sections = workers.flatMap(w => w.sections);
  expect(sections).toHaveLength(TOTAL);
  return sections;
}

async function counterValue(etcd: Etcd3, name: string): Promise<number> {
  return Number(await etcd.get(`counter/${name}`).string());
}

/** Pairs of sections whose [enter, exit] intervals intersect. */
function overlaps(sections: Section[]): number {
  const byEnter = [...sections].sort((a, b) => (a.enter < b.enter ? -1 : a.enter > b.enter ? 1 : 0));
  let count = 0;
  let lastExit = -1n;
  for (const s of byEnter) {
    if (s.enter < lastExit) count++;
    if (s.exit > lastExit) lastExit = s.exit;
  }
  return count;
}

describe('several processes incrementing one counter in etcd', () => {
  let etcd: EtcdCluster;
  let view: Etcd3;

  beforeAll(async () => {
    if (!fs.existsSync(WORKER)) throw new Error(`${WORKER} is missing: run \`npm run build\` first (npm test does)`);
    etcd = await startEtcd();
    view = observer(etcd.endpoints);
  });

  afterAll(async () => {
    await Promise.all(
      [...children].map(
        child =>
          new Promise<void>(resolve => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    view?.close();
    await etcd?.close();
  });

  it(`with the lock: ${WORKERS} processes × ${ITERATIONS} increments lose nothing, in FIFO order, never overlapping`, async () => {
    const started = performance.now();
    const sections = await runWorkers(etcd.endpoints, 'with-lock', true);
    const elapsed = performance.now() - started;

    expect(await counterValue(view, 'with-lock')).toBe(TOTAL);

    // In grant order (the monotonic clock shared by the processes), the fencing tokens strictly
    // increase: grants follow create revision. And the k-th grant read exactly k: each section saw
    // every earlier one's write and none of a later one's.
    const byEnter = [...sections].sort((a, b) => (a.enter < b.enter ? -1 : 1));
    const tokens = byEnter.map(s => BigInt(s.token!));
    for (let k = 1; k < tokens.length; k++) expect(tokens[k]! > tokens[k - 1]!).toBe(true);
    expect(byEnter.map(s => s.read)).toEqual(Array.from({ length: TOTAL }, (_, k) => k));
    const byToken = [...sections].sort((a, b) => (BigInt(a.token!) < BigInt(b.token!) ? -1 : 1));
    expect(byToken).toEqual(byEnter);

    // No two critical sections overlap: each one ended before the next began.
    expect(overlaps(sections)).toBe(0);
    for (let k = 1; k < byEnter.length; k++) expect(byEnter[k - 1]!.exit < byEnter[k]!.enter).toBe(true);

    // The processes really contended: the lock went from one process to another most of the time
    // (FIFO queueing hands it round; a process re-queues behind the others when it releases).
    const switches = byEnter.filter((s, k) => k > 0 && s.worker !== byEnter[k - 1]!.worker).length;
    console.log(
      `[counter] ${TOTAL} sections by ${WORKERS} processes in ${elapsed.toFixed(0)} ms (incl. process start); ` +
        `${switches} of ${TOTAL - 1} handoffs went to another process`,
    );
    expect(switches).toBeGreaterThanOrEqual(TOTAL / 2);
  });

  it('without the lock the same workers lose updates (so the test above can fail)', async () => {
    const sections = await runWorkers(etcd.endpoints, 'no-lock', false);
    const value = await counterValue(view, 'no-lock');
    console.log(`[counter] without the lock: counter ${value} of ${TOTAL}, ${overlaps(sections)} overlapping sections`);
    expect(value).toBeLessThan(TOTAL);
    expect(overlaps(sections)).toBeGreaterThan(0);
  });
});
