import type { Etcd3, Watcher } from 'etcd3';
import type { LockLogger } from './logger.js';

/** Pause before re-creating a watch that etcd ended with an error (e.g. its history compacted). */
const REWATCH_MS = 100;

/** What to watch: one key, or every key under a prefix. */
export type WatchTarget = { key: string; only?: 'delete' } | { prefix: string };

/**
 * Watches keys from "now" and calls `onChange` on every event and every time the watch is
 * (re)armed: at first, after etcd3 resumed a broken stream, and after a watch that etcd ended
 * (a compacted revision) was created anew. The caller re-reads on each call, so the gap before a
 * watch is armed is covered, and no event is ever the only source of truth. With `recheckEveryMs`
 * it also calls `onChange` that often: the watch rides etcd3's one shared stream, which can stall or
 * be refused (an expired auth token) without a word. Returns the stopper.
 */
export function watchKeys(etcd: Etcd3, target: WatchTarget, onChange: () => void, logger: LockLogger, recheckEveryMs?: number): () => void {
  let stopped = false;
  const recheck = recheckEveryMs === undefined ? undefined : setInterval(onChange, recheckEveryMs);
  recheck?.unref();
  let current: Watcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  const drop = (watcher: Watcher) => {
    watcher.removeAllListeners();
    watcher.on('error', () => undefined);
    watcher.cancel().catch(() => undefined);
  };
  const open = () => {
    if (stopped) return;
    const builder = etcd.watch();
    if ('prefix' in target) builder.prefix(target.prefix);
    else {
      builder.key(target.key);
      if (target.only) builder.only(target.only);
    }
    const watcher = builder.watcher();
    current = watcher;
    watcher.on('connected', () => onChange());
    watcher.on('put', () => onChange());
    watcher.on('delete', () => onChange());
    watcher.on('error', err => {
      logger.debug?.(`watch on ${'prefix' in target ? target.prefix : target.key} ended (${String(err)}); watching again`);
      drop(watcher);
      if (current !== watcher) return;
      current = undefined;
      timer = setTimeout(open, REWATCH_MS);
      onChange();
    });
  };
  open();
  return () => {
    stopped = true;
    clearInterval(recheck);
    clearTimeout(timer);
    if (current) drop(current);
    current = undefined;
  };
}
