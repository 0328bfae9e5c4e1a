import { Watcher } from 'etcd3';

/**
 * Counts what etcd3's Watchers in this process receive, by wrapping `Watcher.prototype.emit`
 * (benchmark code only; the library is untouched). Each etcd event a watcher gets is emitted
 * as 'put' or 'delete'; 'data' is one watch response; 'connected' one watch armed.
 */
export interface WatchCounts {
  delete: number;
  put: number;
  data: number;
  connected: number;
  disconnected: number;
  error: number;
}

const counts: WatchCounts = { delete: 0, put: 0, data: 0, connected: 0, disconnected: 0, error: 0 };
let installed = false;
/** Wall-clock times of the 'delete' events received, for the handoff breakdown. */
const deleteTimes: number[] = [];
const connectedListeners = new Set<() => void>();

export function installWatchCounter(): void {
  if (installed) return;
  installed = true;
  const original = Watcher.prototype.emit;
  Watcher.prototype.emit = function (this: Watcher, event: string | symbol, ...args: unknown[]): boolean {
    if (typeof event === 'string' && event in counts) {
      counts[event as keyof WatchCounts]++;
      if (event === 'delete') deleteTimes.push(performance.timeOrigin + performance.now());
      if (event === 'connected') for (const listener of connectedListeners) listener();
    }
    return original.call(this, event, ...args);
  };
}

export function watchCounts(): WatchCounts {
  return { ...counts };
}

export function deleteEventTimes(): number[] {
  return [...deleteTimes];
}

export function diffCounts(after: WatchCounts, before: WatchCounts): WatchCounts {
  const out = { ...after };
  for (const k of Object.keys(out) as (keyof WatchCounts)[]) out[k] = after[k] - before[k];
  return out;
}

/** Resolves once `n` more watches have been armed (etcd confirmed them) in this process. */
export function armedWatches(n: number): Promise<void> {
  const target = counts.connected + n;
  if (n <= 0) return Promise.resolve();
  return new Promise(resolve => {
    const check = () => {
      if (counts.connected >= target) {
        connectedListeners.delete(check);
        resolve();
      }
    };
    connectedListeners.add(check);
  });
}
