/**
 * Worker processes of a benchmark (Node or the Go helper), driven over a line protocol:
 * the worker prints "ready" (or other status lines), reads commands from stdin ("go"), and
 * prints its result as one JSON line last. Every worker is SIGKILLed if the run dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** dist/bench/ (where the compiled workers live). */
export const BENCH_DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export class Worker {
  private readonly child: ChildProcess;
  private buffer = '';
  private readonly lines: string[] = [];
  private waiting: { match: (line: string) => boolean; resolve: (line: string) => void } | undefined;
  private stderr = '';
  private readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    env: NodeJS.ProcessEnv = {},
  ) {
    this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    live.add(this.child);
    // 'close', not 'exit': it comes after stdout has been read to its end.
    this.exited = new Promise(resolve =>
      this.child.once('close', code => {
        live.delete(this.child);
        resolve(code);
      }),
    );
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        this.lines.push(line);
        if (this.waiting?.match(line)) {
          const w = this.waiting;
          this.waiting = undefined;
          w.resolve(line);
        }
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr = (this.stderr + d).slice(-4000);
    });
  }

  /** Waits for a stdout line matching `match` (a prefix or a predicate). */
  async line(match: string | ((line: string) => boolean), timeoutMs = 60_000): Promise<string> {
    const test = typeof match === 'string' ? (l: string) => l.startsWith(match) : match;
    const seen = this.lines.find(test);
    if (seen) {
      this.lines.splice(this.lines.indexOf(seen), 1);
      return seen;
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        new Promise<string>(resolve => (this.waiting = { match: test, resolve })),
        this.exited.then(code => {
          throw new Error(`${this.name} exited (code ${code}) before printing the expected line.\n${this.stderr}`);
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${this.name}: no expected line within ${timeoutMs} ms.\n${this.stderr}`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  send(command: string): void {
    this.child.stdin!.write(`${command}\n`);
  }

  /** The JSON the worker prints last; waits for it to exit. */
  async result<T>(timeoutMs = 120_000): Promise<T> {
    const line = await this.line(l => l.startsWith('{'), timeoutMs);
    this.child.stdin!.end();
    await this.exited;
    return JSON.parse(line) as T;
  }

  /** Ends stdin (the worker's cue to shut down cleanly), then SIGKILLs it if it lingers. */
  async stop(timeoutMs = 5000): Promise<void> {
    this.child.stdin!.end();
    const timer = setTimeout(() => this.kill(), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** A compiled Node worker from dist/bench/workers/, configured by one JSON argument. */
export function nodeWorker(name: string, script: string, config: unknown, nodeArgs: string[] = []): Worker {
  return new Worker(name, process.execPath, [...nodeArgs, path.join(BENCH_DIST, 'workers', script), JSON.stringify(config)]);
}

/** Reads commands from stdin, one per line (worker side). */
export function stdinCommands(): { next(): Promise<string> } {
  const queue: string[] = [];
  let waiter: ((line: string) => void) | undefined;
  let buffer = '';
  process.stdin.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (waiter) {
        const w = waiter;
        waiter = undefined;
        w(line);
      } else queue.push(line);
    }
  });
  return {
    next: () => (queue.length ? Promise.resolve(queue.shift()!) : new Promise(resolve => (waiter = resolve))),
  };
}

/**
 * Prints the worker's result as its last line and exits once it is written: stdout to a pipe is
 * asynchronous, so exiting right after a large console.log could cut the line short.
 */
export function finish(result: unknown): void {
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}

/** User + system CPU time of a process in ms, from /proc/<pid>/stat (Linux); NaN elsewhere. */
export function processCpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks, USER_HZ = 100
  } catch {
    return NaN;
  }
}
