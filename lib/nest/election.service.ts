import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { Observable } from 'rxjs';
import { backoffPauses, type CampaignOptions, type Elections, type LeaderInfo, type Leadership } from '../core/index.js';
import { ELECTION_OPTIONS, ELECTIONS, type ResolvedElectionOptions } from './election-options.js';

/** Where this instance stands in one election it campaigned in through `ElectionService`. */
export interface ElectionStanding {
  name: string;
  /** Leads it now (see `ElectionService.leadership`). */
  leader: boolean;
  /** Campaigns in or leads it now (false once resigned or lost, until it campaigns again). */
  campaigning: boolean;
  /** While leader: the leadership's fencing token and proclaimed value. */
  fencingToken?: bigint;
  value?: string;
}

/** Pauses before campaigning again after a failed campaign. */
const CAMPAIGN_RETRY = { firstMs: 250, maxMs: 5000 };

/**
 * Leader elections for the application, on the lock client's etcd and lease, in the key layout of
 * `etcdctl elect` and Go's `concurrency.Election` (`<electionPrefix><name>/<lease id hex>`), so
 * they elect among each other.
 *
 * ```ts
 * const leadership = await elections.campaign('reports', 'pod-7'); // waits until leader
 * leadership.fencingToken; leadership.signal; await leadership.proclaim('x'); await leadership.resign();
 * await elections.leader('reports');   // { key, value, leaseId, fencingToken } | undefined
 * elections.observe('reports');        // Observable of the leader, undefined when there is none
 * ```
 * With the module option `election`, it campaigns by itself at bootstrap (for `@LeaderOnly`),
 * again after each loss, and resigns on shutdown.
 */
@Injectable()
export class ElectionService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  /** The leaderships this service's campaigns won and that are still held, by election name. */
  private readonly held = new Map<string, Leadership>();
  /** Every election name campaigned in through this service, in first-campaign order. */
  private readonly names = new Set<string>();
  private readonly stopAuto = new AbortController();
  private auto: Promise<void> | undefined;

  constructor(
    /** The backend (etcd, or in memory under `EtcdLockTestingModule`). */
    @Inject(ELECTIONS) readonly elections: Elections,
    @Inject(ELECTION_OPTIONS) private readonly options: ResolvedElectionOptions,
  ) {}

  /**
   * Campaigns in election `name` with `value` and resolves once this instance leads it.
   * @throws LockLostError when the lease is lost while waiting; LockTimeoutError after `timeout`;
   *   AlreadyCampaigningError when this instance already campaigns in `name`; InvalidLockArgumentError.
   */
  async campaign(name: string, value: string, options?: CampaignOptions): Promise<Leadership> {
    this.elections.keyPrefix(name);
    this.names.add(name);
    const leadership = await this.elections.campaign(name, value, options);
    this.held.set(name, leadership);
    return leadership;
  }

  /** The current leader of election `name` (read from etcd), or `undefined` when nobody campaigns. */
  leader(name: string): Promise<LeaderInfo | undefined> {
    return this.elections.leader(name);
  }

  /**
   * The leader of election `name` now and on every change, `undefined` while there is none.
   * Cold: each subscription watches etcd until it unsubscribes; it re-syncs after watch errors.
   */
  observe(name: string): Observable<LeaderInfo | undefined> {
    this.elections.keyPrefix(name);
    return new Observable<LeaderInfo | undefined>(subscriber => this.elections.observe(name, leader => subscriber.next(leader)));
  }

  /**
   * This instance's leadership of election `name`, while it holds it (won through this service,
   * not resigned, not known lost). Checks the lease deadline on the spot.
   */
  leadership(name = 'default'): Leadership | undefined {
    const leadership = this.held.get(name);
    if (!leadership) return undefined;
    if (leadership.resigned || leadership.signal.aborted) {
      this.held.delete(name);
      return undefined;
    }
    return leadership;
  }

  /** True while this instance leads election `name` (see {@link leadership}). */
  isLeader(name = 'default'): boolean {
    return this.leadership(name) !== undefined;
  }

  /** Where this instance stands in each election it campaigned in through this service: for health checks. */
  standings(): ElectionStanding[] {
    return [...this.names].map(name => {
      const leadership = this.leadership(name);
      const campaigning = this.elections.campaigning(name);
      return leadership
        ? { name, leader: true, campaigning, fencingToken: leadership.fencingToken, value: leadership.value }
        : { name, leader: false, campaigning };
    });
  }

  onApplicationBootstrap(): void {
    const election = this.options.election;
    if (election?.autoCampaign) this.auto = this.campaignForever(election.name, election.value);
  }

  /** Resigns before the lock client closes, so the next candidate leads at once. */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopAuto.abort();
    await this.auto;
    await Promise.allSettled([...this.held.values()].map(leadership => leadership.resign()));
    this.held.clear();
    this.elections.close();
  }

  private async campaignForever(name: string, value: string): Promise<void> {
    const stop = this.stopAuto.signal;
    for (let pauses = backoffPauses(CAMPAIGN_RETRY); !stop.aborted;) {
      try {
        const leadership = await this.campaign(name, value, { signal: stop });
        pauses = backoffPauses(CAMPAIGN_RETRY);
        // Ended by a loss, or by a resign() through this service or on the Leadership itself.
        await Promise.race([leadership.ended, untilAborted(stop)]);
        if (leadership.lost) this.elections.logger.warn(`leadership of election "${name}" lost; campaigning again`);
      } catch (err) {
        if (stop.aborted) return;
        const pause = pauses.next().value;
        this.elections.logger.warn(`campaign in election "${name}" failed (${(err as Error).message}); again in ${pause} ms`);
        await untilAborted(stop, pause);
      }
    }
  }
}

/** Resolves when `signal` aborts (or after `ms`, if given). */
function untilAborted(signal: AbortSignal, ms?: number): Promise<void> {
  return new Promise(resolve => {
    const timer = ms === undefined ? undefined : setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    if (signal.aborted) done();
    else signal.addEventListener('abort', done, { once: true });
  });
}
