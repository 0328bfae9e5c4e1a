import type { Etcd3, Watcher } from 'etcd3';

/**
 * Watches one key for deletion, starting from "now".
 *
 * A watch whose start revision is at or below the store's current revision is "unsynced" in
 * etcd and only served by a 100 ms background loop; that is what limits Go's Mutex to about ten
 * handoffs per second. Watching from now keeps the watch synced, so a deletion arrives as one
 * event. The caller re-reads the queue once the watch is armed to cover the gap before it, unless
 * etcd armed it at the very revision the caller last read (then there is no gap).
 */
export class DeletionWatch {
  /** Settles when the key is deleted, or when the watch broke and the caller must re-read. */
  readonly changed: Promise<void>;
  private readonly watcher: Watcher;
  private readonly armed: Promise<string>;

  constructor(client: Etcd3, key: string) {
    // watcher() (not create()) so that we hold the watcher at once and can cancel it even if
    // the caller gives up before etcd confirms it.
    this.watcher = client.watch().key(key).only('delete').watcher();
    // An 'error' with no listener would crash the process; the promises below observe it.
    this.watcher.on('error', () => undefined);
    this.armed = new Promise((resolve, reject) => {
      // etcd starts a watch from "now" at the revision after the one in its created response.
      this.watcher.once('connected', (res: { header: { revision: string } }) => resolve(String(res.header.revision)));
      this.watcher.once('error', reject);
    });
    this.armed.catch(() => undefined);
    // After a disconnect etcd3 resumes from its last revision, or errors out if that was
    // compacted; either way we no longer trust the wait and re-read.
    this.changed = new Promise(resolve => {
      this.watcher.once('delete', () => resolve());
      this.watcher.once('disconnected', () => resolve());
      this.watcher.once('error', () => resolve());
    });
  }

  /** Resolves once etcd confirms the watch, with the store revision it was armed at. */
  ready(): Promise<string> {
    return this.armed;
  }

  cancel(): void {
    this.watcher.removeAllListeners('delete');
    this.watcher.cancel().catch(() => undefined);
  }
}
