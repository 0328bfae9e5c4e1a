import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';
import { EXIT_WITH_PARENT, SAMPLE_APP_MAIN } from './project-paths.js';

/** How to start one sample-app instance. */
export interface SampleAppOptions {
  /** INSTANCE_NAME: shows in replies and logs. */
  name: string;
  etcdHosts: readonly string[];
  lockPrefix: string;
  statePrefix: string;
  /** LOCK_TTL in seconds. */
  lockTtl: number;
  /** Further environment variables (AUDIT_INTERVAL_MS, LOCK_WAIT_TIMEOUT_MS, ...). */
  env?: Record<string, string>;
  /** How long to wait for the "listening on" line (default 20 s). */
  startTimeoutMs?: number;
}

/** A running sample-app process. */
export interface SampleAppProcess {
  readonly name: string;
  readonly pid: number;
  /** Base URL, e.g. `http://127.0.0.1:41319`. */
  readonly url: string;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  /** SIGSTOP: the process freezes, timers and lease renewals included. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** SIGTERM (graceful: the instance revokes its lease), SIGKILL if still running after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
}

const LISTENING = /listening on (http:\/\/[^\s]+)/;
const running = new Set<ChildProcess>();

// Outside Jest (whose sandboxed `process` never emits 'exit'), a last resort on any exit path;
// inside it, the orphan guard and the tests' own cleanup do the job.
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Starts `node dist/sample-app/main.js` with the given settings; resolves once it listens. */
export async function startSampleApp(options: SampleAppOptions): Promise<SampleAppProcess> {
  if (!fs.existsSync(SAMPLE_APP_MAIN)) throw new Error(`${SAMPLE_APP_MAIN} is missing: run \`npm run build\` first`);
  const child = spawn(process.execPath, ['--import', pathToFileURL(EXIT_WITH_PARENT).href, SAMPLE_APP_MAIN], {
    env: {
      ...process.env,
      ETCD_HOSTS: options.etcdHosts.join(','),
      LOCK_PREFIX: options.lockPrefix,
      STATE_PREFIX: options.statePrefix,
      LOCK_TTL: String(options.lockTtl),
      PORT: '0',
      HOST: '127.0.0.1',
      INSTANCE_NAME: options.name,
      NO_COLOR: '1',
      ...options.env,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(child);
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()));
  void exited.then(() => running.delete(child));
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));

  const isRunning = () => child.exitCode === null && child.signalCode === null;
  const signal = (name: NodeJS.Signals) => {
    if (isRunning()) child.kill(name);
  };
  const instance = (url: string): SampleAppProcess => ({
    name: options.name,
    pid: child.pid!,
    url,
    output: () => output,
    pause: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
    exited,
    stop: (graceMs = 5000) => terminate(child, graceMs),
  });

  try {
    const url = await waitForUrl(child, () => output, exited, options.startTimeoutMs ?? 20_000);
    return instance(url);
  } catch (err) {
    signal('SIGKILL');
    await exited;
    throw new Error(`sample-app ${options.name}: ${(err as Error).message}\n--- its output ---\n${output.slice(-4000)}`, {
      cause: err,
    });
  }
}

/** Stops every instance this module started that is still running (SIGKILL after `graceMs`). */
export async function stopAllSampleApps(graceMs = 3000): Promise<void> {
  await Promise.all([...running].map(child => terminate(child, graceMs)));
}

/** SIGTERM, then SIGKILL if the process outlives `graceMs`; resolves once it has exited. */
async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()));
  // A paused process would act on SIGTERM only once resumed.
  child.kill('SIGCONT');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

function waitForUrl(child: ChildProcess, output: () => string, exited: Promise<void>, timeoutMs: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`did not listen within ${timeoutMs} ms`)), timeoutMs);
    const onData = () => {
      const match = LISTENING.exec(output());
      if (match) finish(undefined, match[1]);
    };
    const finish = (err?: Error, url?: string) => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      if (err) reject(err);
      else resolve(url!);
    };
    child.stdout!.on('data', onData);
    void exited.then(() => finish(new Error(`exited (code ${child.exitCode}, signal ${child.signalCode}) before listening`)));
    onData();
  });
}
