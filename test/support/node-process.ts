import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Compiled test workers (`npm run build` compiles test/workers to dist/test/workers). */
export const WORKERS_DIR = path.resolve(here, '../../dist/test/workers');

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export interface NodeWorker {
  readonly child: ChildProcess;
  /** Every JSON line the worker printed so far. */
  readonly messages: Array<Record<string, unknown>>;
  /** Resolves with the first message matching `predicate` (already seen or future). */
  next(predicate: (message: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGKILLs the worker (if still running) and waits for its exit. */
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

/** Starts a compiled worker from dist/test/workers; it is killed when the test process exits. */
export function startWorker(name: string, args: string[]): NodeWorker {
  const child = spawn(process.execPath, [path.join(WORKERS_DIR, `${name}.js`), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(child);
  const messages: Array<Record<string, unknown>> = [];
  const listeners = new Set<() => void>();
  let stderr = '';
  child.stderr!.on('data', chunk => (stderr += chunk));
  createInterface({ input: child.stdout! }).on('line', line => {
    try {
      messages.push(JSON.parse(line));
    } catch {
      messages.push({ raw: line });
    }
    for (const listener of listeners) listener();
  });
  const exited = new Promise<number | null>(resolve => child.once('exit', code => (running.delete(child), resolve(code))));
  return {
    child,
    messages,
    exited,
    next(predicate, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = messages.find(predicate);
          if (!found) return;
          cleanup();
          resolve(found);
        };
        const timer = setTimeout(
          () => (cleanup(), reject(new Error(`worker ${name}: no matching message within ${timeoutMs} ms; stderr: ${stderr}`))),
          timeoutMs,
        );
        const onExit = () => (cleanup(), reject(new Error(`worker ${name} exited early; stderr: ${stderr}`)));
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off('exit', onExit);
        };
        listeners.add(check);
        child.once('exit', onExit);
        check();
      });
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
