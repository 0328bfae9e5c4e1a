import { setTimeout as sleep } from 'node:timers/promises';
import { backoffPauses } from './backoff.js';
import { AlreadyCampaigningError, assertElectionName, assertElectionPrefix, assertElectionValue } from './election-errors.js';
import { InvalidLockArgumentError, LockClientClosedError } from './errors.js';
import { LockHandle, type LockLease } from './handle.js';
import { describeValue } from './keys.js';
import type { AcquireOneOptions } from './lock-client.js';
import type { LockEvents } from './lock-events.js';
import { EXCLUSIVE } from './lock-mode.js';
import type { LockLogger } from './logger.js';
import { Leadership } from './leadership.js';
import { resolveWaitTimeout } from './options.js';

/** Options of one campaign. */
export interface CampaignOptions {
  /** Gives up the campaign when aborted; it rejects with the signal's reason and withdraws the key. */
  signal?: AbortSignal;
  /** How long to wait to become leader, in ms (`LockTimeoutError` after it). Default `Infinity`. */
  timeout?: number;
}

/** The leader of an election, as `leader()` and `observe()` report it. */
export interface LeaderInfo {
  /** The leader key, `<electionPrefix><name>/<lease id hex>`. */
  key: string;
  /** The value it proclaims. */
  value: string;
  /** Its lease, in hex (as `etcdctl lease list` shows it). */
  leaseId: string;
  /** The leader key's create revision. */
  fencingToken: bigint;
}

/** Called by `observe()` with the leader now and after each change; `undefined` while nobody leads. */
export type LeaderListener = (leader: LeaderInfo | undefined) => void;

/** One candidacy that won, as a backend hands it over. */
export interface Candidacy {
  key: string;
  fencingToken: bigint;
  lease: LockLease;
  /** Deletes the key if it still has this candidacy's create revision. */
  remove(): Promise<void>;
  /** Puts `value` on the key if it still has this candidacy's create revision; false when it is gone. */
  proclaim(value: string): Promise<boolean>;
  /** Calls `onGone` once if the key is deleted (or found gone) while leading; returns the stopper. */
  watchGone(onGone: (reason: string) => void): () => void;
}

const CAMPAIGN_OPTIONS = new Set(['signal', 'timeout']);
const RESYNC_RETRY = { firstMs: 50, maxMs: 1000 };

/**
 * Leader elections with the key layout of etcd's `concurrency.Election` and `etcdctl elect`:
 * each candidate puts `<prefix><name>/<lease id hex>` (value = its proposal) on its lease, and the
 * key with the lowest create revision leads. A backend supplies how a candidate queues and waits
 * (etcd, or in memory for tests); argument checks, one candidacy per name, leadership handles,
 * events and observation are shared here.
 */
export abstract class Elections {
  /** Names this client campaigns in or leads now, each with the candidacy that holds it. */
  private readonly campaigns = new Map<string, object>();
  private readonly observers = new Set<() => void>();
  private closed = false;

  protected constructor(
    /** Prefix of every election's keys: `<prefix><name>/<lease hex>`. Default `elections/`. */
    readonly prefix: string,
    protected readonly events: LockEvents,
    /** Where the elections log (the lock client's logger). */
    readonly logger: LockLogger,
  ) {
    assertElectionPrefix(prefix);
  }

  /** Queues a candidate key and resolves once it leads (its key has the lowest create revision). */
  protected abstract enter(resource: string, keyPrefix: string, value: string, options: AcquireOneOptions): Promise<Candidacy>;

  /** The candidate with the lowest create revision under `keyPrefix`, if any. */
  protected abstract readLeader(keyPrefix: string): Promise<LeaderInfo | undefined>;

  /** Calls `onChange` whenever a key under `keyPrefix` may have changed (or a watch was re-armed); returns the stopper. */
  protected abstract watchPrefix(keyPrefix: string, onChange: () => void): () => void;

  /** The key prefix of one election's candidates, `<prefix><name>/`. @throws InvalidLockArgumentError for a bad name. */
  keyPrefix(name: string): string {
    assertElectionName(name);
    return `${this.prefix}${name}/`;
  }

  /**
   * Campaigns in election `name` with `value` and resolves once this client leads it. Waiting
   * candidates queue in create-revision order (FIFO); each watches only the candidate right ahead
   * of it, and re-checks its own key after every wake-up, so a candidate whose lease died while
   * it waited never wins.
   * @throws LockLostError when the lease is lost while waiting (Go's Campaign would win then, etcd#19597);
   *   LockTimeoutError after `timeout`; the signal's reason when aborted; AlreadyCampaigningError
   *   when this client already campaigns in `name`; InvalidLockArgumentError; EtcdUnavailableError.
   */
  async campaign(name: string, value: string, options: CampaignOptions = {}): Promise<Leadership> {
    const keyPrefix = this.keyPrefix(name);
    assertElectionValue(value);
    const { signal, timeout } = resolveCampaignOptions(options);
    if (this.closed) throw new LockClientClosedError();
    if (this.campaigns.has(name)) throw new AlreadyCampaigningError(name);
    const ticket = {};
    this.campaigns.set(name, ticket);
    const done = () => {
      if (this.campaigns.get(name) === ticket) this.campaigns.delete(name);
    };
    const resource = keyPrefix.slice(0, -1);
    const started = performance.now();
    let candidacy: Candidacy;
    try {
      candidacy = await this.enter(resource, keyPrefix, value, {
        waitTimeoutMs: timeout,
        statedTimeoutMs: timeout,
        tryOnly: false,
        signal,
        mode: EXCLUSIVE,
      });
    } catch (error) {
      done();
      this.events.emit({ type: 'failed', resource, waitedMs: performance.now() - started, error });
      throw error;
    }
    let stopWatching: () => void = () => undefined;
    let markEnded!: () => void;
    const ended = new Promise<void>(resolve => (markEnded = resolve));
    const end = () => {
      stopWatching();
      done();
      markEnded();
    };
    const handle = new LockHandle(
      resource,
      candidacy.key,
      candidacy.fencingToken,
      candidacy.lease,
      async () => {
        stopWatching();
        try {
          await candidacy.remove();
        } finally {
          end();
        }
      },
      this.events,
    );
    // Reading the signal checks the lease deadline: it may be aborted already, with no event to come.
    const lossSignal = handle.signal;
    if (lossSignal.aborted) end();
    else {
      lossSignal.addEventListener('abort', end, { once: true });
      stopWatching = candidacy.watchGone(reason => handle.markLost(reason));
    }
    const waitedMs = performance.now() - started;
    this.events.emit({ type: 'acquired', resource, key: handle.key, fencingToken: handle.fencingToken, waitedMs });
    return new Leadership(name, handle, value, candidacy, ended);
  }

  /** The current leader of election `name`, or `undefined` when nobody campaigns in it. */
  async leader(name: string): Promise<LeaderInfo | undefined> {
    return this.readLeader(this.keyPrefix(name));
  }

  /** True while this client campaigns in or leads election `name`. */
  campaigning(name: string): boolean {
    return this.campaigns.has(name);
  }

  /**
   * Calls `listener` with the leader of election `name` now, then on every change (another
   * leader, a proclaimed value, `undefined` when nobody campaigns), until the returned stopper
   * is called. After a broken watch (etcd restarted, history compacted) it re-reads the leader
   * and watches again; while etcd does not answer it retries, reporting nothing meanwhile.
   */
  observe(name: string, listener: LeaderListener): () => void {
    const keyPrefix = this.keyPrefix(name);
    if (this.closed) throw new LockClientClosedError();
    let stopped = false;
    let last: string | undefined;
    let reading = false;
    let dirty = false;
    const resync = async (): Promise<void> => {
      if (reading) {
        dirty = true;
        return;
      }
      reading = true;
      try {
        do {
          dirty = false;
          const leader = await this.readLeaderRetrying(keyPrefix, () => stopped);
          if (stopped) return;
          const seen = leader ? `${leader.key}@${leader.fencingToken}=${leader.value}` : '';
          if (seen === last) continue;
          last = seen;
          try {
            listener(leader);
          } catch (err) {
            this.logger.error(`an election observer of "${name}" threw: ${String(err)}`);
          }
        } while (dirty && !stopped);
      } finally {
        reading = false;
      }
    };
    const stopWatch = this.watchPrefix(keyPrefix, () => void resync());
    void resync();
    const stop = () => {
      stopped = true;
      stopWatch();
      this.observers.delete(stop);
    };
    this.observers.add(stop);
    return stop;
  }

  /** Stops every observation; later campaigns and observations throw `LockClientClosedError`. */
  close(): void {
    this.closed = true;
    for (const stop of [...this.observers]) stop();
  }

  private async readLeaderRetrying(keyPrefix: string, stopped: () => boolean): Promise<LeaderInfo | undefined> {
    for (const pauses = backoffPauses(RESYNC_RETRY); ;) {
      try {
        return await this.readLeader(keyPrefix);
      } catch (err) {
        if (stopped()) return undefined;
        const pause = pauses.next().value;
        this.logger.debug?.(`reading the leader of ${keyPrefix} failed, retrying in ${pause} ms: ${String(err)}`);
        await sleep(pause);
      }
    }
  }
}

function resolveCampaignOptions(options: CampaignOptions): { signal: AbortSignal | undefined; timeout: number } {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidLockArgumentError('options', `expected { signal?, timeout? }, got ${describeValue(options)}`);
  }
  for (const name of Object.keys(options)) {
    if (!CAMPAIGN_OPTIONS.has(name)) throw new InvalidLockArgumentError(name, 'unknown option');
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new InvalidLockArgumentError('signal', 'expected an AbortSignal');
  }
  return { signal: options.signal, timeout: resolveWaitTimeout(options.timeout ?? Infinity, 'timeout') };
}
