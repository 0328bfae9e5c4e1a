import type { Etcd3, Namespace } from 'etcd3';
import { DeletionWatch, type WatchFor } from './deletion-watch.js';
import type { LockLogger } from './logger.js';

/**
 * The watch stream a client's waiters share, and its replacement when it fails.
 *
 * etcd3 keeps one watch stream per `Namespace`, opened with the auth token of that moment. When
 * etcd refuses a create on it (the token expired) or a stalled member never answers one, etcd3
 * sends no further create on that stream, so every later wait on it would hang. A waiter that
 * sees its watch refused or unconfirmed calls {@link rebuild}: new watches then go to a fresh
 * `Namespace` (etcd3's public way to get another stream, opened with the current token on a
 * member the pool picks), and the old stream is cancelled so that the watches still on it wake
 * up (`disconnected`) and move over. Rebuilds are counted in generations, so the many waiters that
 * notice one broken stream cause one rebuild.
 */
export class WatchChannel {
  private source: Namespace;
  private generationNo = 0;
  /**
   * etcd3 tears a stream down when its last watcher goes, so a process waiting for one lock at a
   * time would open a new gRPC stream for every wait (~3.5 ms instead of ~0.5 ms to arm a watch).
   * One idle watch, on a key no lock ever uses, keeps the stream open.
   */
  private idleWatch: DeletionWatch | undefined;
  /** Watches of the current stream whose create etcd has not answered yet. */
  private pending = new Set<DeletionWatch>();
  private open = 0;
  private closed = false;
  /** Highest store revision our unary reads have seen; a stream's member behind it is stale. */
  private knownRevision = 0;
  /** When a probe last showed the current stream answering, and up to date. */
  private provenAt = -Infinity;
  private probing: Promise<boolean> | undefined;
  private probesBehind = 0;

  constructor(
    private readonly client: Etcd3,
    /** A key no lock ever uses, for the idle watch. */
    private readonly idleKey: string,
    /** How long etcd may take to confirm a watch create once etcd3 sent it. */
    readonly armTimeoutMs: number,
    private readonly logger: LockLogger,
  ) {
    // The first stream is the client's own, so an application that hands us its client shares it.
    this.source = client;
  }

  /** The current stream generation; a failed watch of an older one needs no further rebuild. */
  get generation(): number {
    return this.generationNo;
  }

  /** How many deletion watches are open now (how many waiters one stream failure wakes). */
  get openWatches(): number {
    return this.open;
  }

  /** Starts watching `key` for deletion (or as `watchFor` says) on the current stream. */
  watchDeletion(key: string, watchFor: WatchFor = 'deletion'): DeletionWatch {
    this.keepStreamOpen();
    const watch = this.create(key, watchFor);
    this.open++;
    const cancel = watch.cancel.bind(watch);
    let cancelled = false;
    watch.cancel = () => {
      if (!cancelled) this.open--;
      cancelled = true;
      cancel();
    };
    return watch;
  }

  /**
   * True when a create sent on the current stream has gone unanswered for longer than the arm
   * bound: the stream is stuck, and every create queued behind that one with it.
   */
  stalled(): boolean {
    const now = performance.now();
    for (const watch of this.pending) {
      if (watch.progress === 'sent' && now - (watch.sentAt ?? now) > this.armTimeoutMs) return true;
    }
    return false;
  }

  /** Records a store revision read through a unary call (any member). */
  noteRevision(revision: string): void {
    const value = Number(revision);
    if (value > this.knownRevision) this.knownRevision = value;
  }

  /**
   * Resolves true when the current stream is known to be answering and up to date as of some
   * moment after `since` (performance.now()): its armed watches will see a deletion, and a
   * waiter need not re-read. Otherwise probes it, one probe at a time for all waiters, so the
   * check costs one watch create on the stream per interval, not one read per waiter.
   */
  vouch(since: number): Promise<boolean> {
    if (this.provenAt > since) return Promise.resolve(true);
    this.probing ??= this.probe().finally(() => (this.probing = undefined));
    return this.probing;
  }

  /**
   * Creates a watch on the idle key and checks etcd's answer: none within the arm bound once sent
   * (a stalled member) or a refusal rebuilds the stream; a created response whose revision is
   * below one we already read means the stream's member is cut off from the cluster (it answers
   * creates but sees no new deletions): twice in a row, rebuild.
   */
  private async probe(): Promise<boolean> {
    const generation = this.generationNo;
    const expected = this.knownRevision;
    const watch = this.create(this.idleKey);
    let timer: NodeJS.Timeout | undefined;
    try {
      const outcome = await Promise.race([
        watch.ready().then(Number, () => 'refused' as const),
        watch.changed.then(wake => (wake === 'refused' ? ('refused' as const) : ('broken' as const))),
        new Promise<'late'>(resolve => (timer = setTimeout(() => resolve('late'), this.armTimeoutMs))),
      ]);
      if (typeof outcome === 'number') {
        if (outcome >= expected) {
          this.probesBehind = 0;
          if (generation === this.generationNo) this.provenAt = performance.now();
          return true;
        }
        if (++this.probesBehind >= 2)
          this.rebuild(generation, `its member is behind the cluster (at revision ${outcome}, ${expected} already read)`);
        return false;
      }
      // Still queued behind other creates when late: not the stream's fault (yet).
      if (outcome === 'refused' || (outcome === 'late' && watch.progress === 'sent') || this.stalled()) {
        this.rebuild(generation, `a watch create was refused or not confirmed within ${this.armTimeoutMs} ms`);
      }
      return false;
    } finally {
      clearTimeout(timer);
      watch.cancel();
    }
  }

  private create(key: string, watchFor: WatchFor = 'deletion'): DeletionWatch {
    const pending = this.pending;
    // etcd3 sends a create at once only when none is pending on the stream; then its `connecting`
    // event fires inside the constructor, before the watch can listen.
    const generation = this.generationNo;
    const watch: DeletionWatch = new DeletionWatch(
      this.source,
      key,
      generation,
      this.armTimeoutMs,
      pending.size === 0,
      () => pending.delete(watch),
      () => this.rebuild(generation, `a watch create was not confirmed within ${this.armTimeoutMs} ms`),
      watchFor,
    );
    if (watch.progress !== 'armed' && watch.progress !== 'answered') pending.add(watch);
    return watch;
  }

  /**
   * Replaces the stream of `generation` (the one a failed watch was on) with a fresh one; a no-op
   * when that stream was already replaced.
   */
  rebuild(generation: number, reason: string): void {
    if (generation !== this.generationNo || this.closed) return;
    this.generationNo++;
    this.logger.warn(`etcd watch stream not usable (${reason}); opening another`);
    const old = this.source;
    const oldIdle = this.idleWatch;
    this.source = this.client.namespace('');
    this.idleWatch = undefined;
    this.pending = new Set();
    this.provenAt = -Infinity;
    this.probesBehind = 0;
    cancelStream(old);
    oldIdle?.cancel();
  }

  /**
   * Drops the idle watch without waiting for etcd: on a stalled stream a watch's cancel never
   * completes, and shutdown must not wait for it. A stream of our own is cancelled; the client's
   * own one goes when the client is closed (or stays, for an application's client).
   */
  close(): void {
    this.closed = true;
    const idle = this.idleWatch;
    this.idleWatch = undefined;
    idle?.cancel();
    if (this.source !== this.client) cancelStream(this.source);
  }

  private keepStreamOpen(): void {
    if (this.idleWatch || this.closed) return;
    this.idleWatch = this.create(this.idleKey);
  }
}

interface WatchManagerInternals {
  stream?: { cancel?: () => void };
}

/**
 * Cancels a namespace's gRPC watch stream: etcd3 then tells every watcher on it `disconnected`
 * (and would reconnect the ones that stay). etcd3 has no public call for this, so it is reached
 * defensively: if etcd3's internals change, the watches on the old stream are still ended by
 * their waiters' periodic re-reads.
 */
function cancelStream(source: Namespace): void {
  try {
    const manager = (source as unknown as { watchManager?: WatchManagerInternals }).watchManager;
    manager?.stream?.cancel?.();
  } catch {
    // best effort, see above
  }
}
