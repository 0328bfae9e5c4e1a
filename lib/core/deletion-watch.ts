import type { Namespace, Watcher } from 'etcd3';

/**
 * Why a deletion watch woke its waiter: the key was deleted (or, watching for a `change`, put
 * again); the stream broke (etcd3 reconnects,
 * maybe only after its backoff); or etcd refused the watch or never confirmed it (the stream is
 * not to be trusted: rebuild it).
 */
export type WatchWake = 'deleted' | 'put' | 'disconnected' | 'refused';

/**
 * What a watch waits for: the `deletion` of its key; a `change` of it (deletion or put); or
 * `prefix-deletions`, the deletion of any key under it.
 */
export type WatchFor = 'deletion' | 'change' | 'prefix-deletions';

/** How far a watch's create has got; see {@link DeletionWatch.progress}. */
export type WatchProgress = 'queued' | 'sent' | 'armed' | 'answered';

/** etcd refused a watch, or did not confirm it in time: the stream carrying it is not to be trusted. */
export class WatchNotArmedError extends Error {
  constructor(
    readonly key: string,
    cause: unknown,
  ) {
    super(`watch on ${key} not armed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/**
 * Watches one key for deletion (or, as {@link WatchFor} says, for a change, or a prefix for
 * deletions), starting from "now".
 *
 * A watch whose start revision is at or below the store's current revision is "unsynced" in
 * etcd and only served by a 100 ms background loop; that is what limits Go's Mutex to about ten
 * handoffs per second. Watching from now keeps the watch synced, so a deletion arrives as one
 * event. The caller re-reads the queue once the watch is armed to cover the gap before it, unless
 * etcd armed it at the very revision the caller last read (then there is no gap).
 *
 * etcd3 sends one create at a time on its stream and never another after a create that etcd
 * refuses (e.g. with an expired auth token) or that a stalled member never answers. So `ready()`
 * rejects with {@link WatchNotArmedError} on a refusal, or when etcd has not confirmed the create
 * within `armTimeoutMs` of etcd3 sending it: the caller then rebuilds the stream.
 */
export class DeletionWatch {
  /** Settles when the key is deleted, or when the watch broke and the caller must re-read. */
  readonly changed: Promise<WatchWake>;
  private readonly watcher: Watcher;
  private readonly armed: Promise<string>;
  private armTimer: NodeJS.Timeout | undefined;
  private stage: WatchProgress;
  /** When etcd3 wrote our create to the stream (performance.now()), once it has. */
  sentAt: number | undefined;
  private readonly disconnectListeners: Array<() => void> = [];

  constructor(
    source: Namespace,
    readonly key: string,
    /** The stream generation this watch was created on (see WatchChannel). */
    readonly generation: number,
    armTimeoutMs: number,
    /**
     * True when no other create is pending on the stream: etcd3 then sends ours at once, inside
     * the constructor (its `connecting` event fires before we can listen to it).
     */
    sentAtOnce: boolean,
    /** Called once etcd has answered the create (confirmed or refused) or the stream broke. */
    onAnswered: () => void = () => undefined,
    /**
     * Called when etcd has not answered the create within `armTimeoutMs` of it being sent, even
     * after the watch was cancelled: the stream is stuck for every create behind this one too.
     */
    onStall: () => void = () => undefined,
    watchFor: WatchFor = 'deletion',
  ) {
    this.stage = sentAtOnce ? 'sent' : 'queued';
    if (sentAtOnce) this.sentAt = performance.now();
    // watcher() (not create()) so that we hold the watcher at once and can cancel it even if
    // the caller gives up before etcd confirms it.
    const builder = watchFor === 'prefix-deletions' ? source.watch().prefix(key) : source.watch().key(key);
    this.watcher = (watchFor === 'change' ? builder : builder.only('delete')).watcher();
    // An 'error' with no listener would crash the process; the promises below observe it.
    this.watcher.on('error', () => undefined);
    let refused: () => void = () => undefined;
    const answered = (stage: WatchProgress) => {
      clearTimeout(this.armTimer);
      if (this.stage === 'armed' || this.stage === 'answered') return;
      this.stage = stage;
      onAnswered();
    };
    this.armed = new Promise((resolve, reject) => {
      // etcd starts a watch from "now" at the revision after the one in its created response.
      this.watcher.once('connected', (res: { header: { revision: string } }) => {
        answered('armed');
        resolve(String(res.header.revision));
      });
      this.watcher.once('error', err => {
        const wasArmed = this.stage === 'armed';
        answered('answered');
        reject(new WatchNotArmedError(key, err));
        // An error once armed (e.g. its history compacted on a resume) says nothing about the stream.
        if (!wasArmed) refused();
      });
      const startArmTimer = () => {
        clearTimeout(this.armTimer);
        this.armTimer = setTimeout(() => {
          // An answer may be waiting in the socket while this process was busy: let I/O run first.
          setImmediate(() => {
            if (this.stage !== 'sent') return;
            reject(new WatchNotArmedError(key, `etcd did not confirm it within ${armTimeoutMs} ms`));
            refused();
            onStall();
          });
        }, armTimeoutMs);
        this.armTimer.unref();
      };
      // Timed from the moment etcd3 writes our create (it queues creates one at a time), so a long
      // queue of creates ahead of ours on a healthy stream is not mistaken for a stall.
      if (sentAtOnce) startArmTimer();
      this.watcher.on('connecting', () => {
        if (this.stage === 'armed') return;
        this.stage = 'sent';
        this.sentAt = performance.now();
        startArmTimer();
      });
    });
    this.armed.catch(() => undefined);
    // After a disconnect etcd3 resumes from its last revision, or errors out if that was
    // compacted, maybe only after its reconnect backoff (up to 30 s): the waiter re-reads.
    this.changed = new Promise(resolve => {
      refused = () => resolve('refused');
      this.watcher.once('delete', () => resolve('deleted'));
      if (watchFor === 'change') this.watcher.once('put', () => resolve('put'));
      this.watcher.once('disconnected', () => {
        answered('answered');
        for (const listener of this.disconnectListeners) listener();
        resolve('disconnected');
      });
      this.watcher.once('error', () => resolve('disconnected')); // after `refused` when not armed
    });
  }

  /**
   * `queued` while etcd3 holds the create back (it sends one at a time), `sent` once written to
   * the stream, `armed` once etcd confirmed it, `answered` once refused or the stream broke first.
   */
  get progress(): WatchProgress {
    return this.stage;
  }

  /** Calls `listener` synchronously when the stream carrying this watch breaks. */
  onDisconnected(listener: () => void): void {
    this.disconnectListeners.push(listener);
  }

  /** Resolves once etcd confirms the watch, with the store revision it was armed at. */
  ready(): Promise<string> {
    return this.armed;
  }

  cancel(): void {
    this.watcher.removeAllListeners('delete');
    this.watcher.removeAllListeners('put');
    this.watcher.cancel().catch(() => undefined);
  }
}
