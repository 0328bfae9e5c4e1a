import { setTimeout as sleep } from 'node:timers/promises';
import { EtcdLeaseInvalidError } from 'etcd3';
import { backoffPauses } from './backoff.js';
import { ElectionStore } from './election-store.js';
import { Elections, type Candidacy, type LeaderInfo } from './elections.js';
import { LockLostError } from './errors.js';
import { toLockError } from './etcd-errors.js';
import type { EtcdLockClient } from './etcd-lock-client.js';
import { watchKeys } from './key-watch.js';
import type { AcquireOneOptions } from './lock-client.js';
import type { Session } from './session.js';
import { WaitScope } from './wait-scope.js';

/** Background retries of a withdrawn candidate key's deletion, while its lease lives. */
const WITHDRAW_RETRY = { firstMs: 100, maxMs: 2000 };

/**
 * Elections on etcd, on the lock client's own session lease (the same keepalive as its locks),
 * interoperable with Go's `concurrency.Election` and `etcdctl elect` on the same prefix.
 *
 * A waiting candidate waits in the locks' own queue core (`FairMutex.waitInQueue`, queue-wait.ts):
 * the same watch of the key right ahead, stream-stall handling and re-reads. So, unlike Go's
 * Campaign, it re-reads its own key after every wake-up and fails with `LockLostError` once the
 * key or the lease is gone, instead of winning with a dead key (etcd-io/etcd#19597); and a
 * leadership's `signal` aborts on the session's own deadline, before etcd can expire the lease.
 */
export class EtcdElections extends Elections {
  private readonly store: ElectionStore;
  /**
   * Deletions of our candidate keys still being retried. A new campaign on the same name (the
   * same key: one per lease) waits for its key's, or it would adopt the old key and then lose it.
   */
  private readonly withdrawals = new Map<string, Promise<void>>();

  constructor(
    private readonly client: EtcdLockClient,
    prefix = 'elections/',
  ) {
    super(prefix, client.events, client.options.logger);
    this.store = new ElectionStore(client.etcd, client.options.requestTimeout);
  }

  protected async enter(resource: string, keyPrefix: string, value: string, options: AcquireOneOptions): Promise<Candidacy> {
    const session = await this.client.leaseSession();
    const key = `${keyPrefix}${session.leaseHex}`;
    const scope = new WaitScope(resource, options, session);
    let put: Promise<bigint> | undefined;
    let token: bigint | undefined;
    try {
      scope.throwIfAborted();
      const withdrawal = this.withdrawals.get(key);
      if (withdrawal) await scope.race(withdrawal);
      put = this.store.put(key, value, session.leaseId);
      token = await scope.race(put);
      await this.client.queueCore().waitInQueue({
        session,
        resource,
        prefix: keyPrefix,
        key,
        createRevision: token.toString(),
        value: Buffer.from(value),
        scope,
      });
      if (!session.alive) throw new LockLostError(resource, 'the session expired as the election was won');
      return this.candidacy(session, key, token);
    } catch (err) {
      const failure = scope.aborted ? scope.reason : toLockError(err, `campaigning in election "${resource}"`, resource);
      if (err instanceof EtcdLeaseInvalidError) session.lose('etcd reports that the lease no longer exists', err);
      // A lost lease takes our key with it; a live one keeps it, and it would stall the election.
      if (session.alive) await this.withdraw(session, key, token, put);
      throw failure;
    } finally {
      scope.dispose();
    }
  }

  protected readLeader(keyPrefix: string): Promise<LeaderInfo | undefined> {
    return this.store.leader(keyPrefix).catch(err => {
      throw toLockError(err, `reading the leader of ${keyPrefix}`);
    });
  }

  protected watchPrefix(keyPrefix: string, onChange: () => void): () => void {
    // Re-read every third of the TTL too (observe() reports only changes).
    return watchKeys(this.client.etcd, { prefix: keyPrefix }, onChange, this.logger, (this.client.options.ttl * 1000) / 3);
  }

  private candidacy(session: Session, key: string, token: bigint): Candidacy {
    return {
      key,
      fencingToken: token,
      lease: session,
      remove: () =>
        this.store.deleteOwn(key, token).catch(err => {
          this.retryWithdraw(session, key, token, err);
        }),
      proclaim: value =>
        this.store.proclaim(key, token, value, session.leaseId).catch(err => {
          throw toLockError(err, `proclaiming in ${key}`, key);
        }),
      watchGone: onGone => {
        let verifying = false;
        const verify = () => {
          if (verifying) return;
          verifying = true;
          this.store
            .createRevisionOf(key)
            .then(
              found => {
                if (found !== token) onGone('our leader key was deleted');
              },
              err => this.logger.debug?.(`checking leader key ${key} failed: ${String(err)}`),
            )
            .finally(() => (verifying = false));
        };
        // Also re-read every third of the TTL: a deleted key must not hide behind a stalled stream.
        return watchKeys(this.client.etcd, { key, only: 'delete' }, verify, this.logger, (session.grantedTtl * 1000) / 3);
      },
    };
  }

  /** Deletes the key of a campaign that failed; a put whose outcome is unknown is waited for first. */
  private async withdraw(session: Session, key: string, token: bigint | undefined, put: Promise<bigint> | undefined): Promise<void> {
    if (token === undefined && put) token = await put.catch(() => undefined);
    try {
      await (token === undefined ? this.store.deleteUnique(key) : this.store.deleteOwn(key, token));
    } catch (err) {
      this.retryWithdraw(session, key, token, err);
    }
  }

  /** Retries a candidate key's deletion in the background while its lease lives; registered in `withdrawals`. */
  private retryWithdraw(session: Session, key: string, token: bigint | undefined, first: unknown): void {
    this.logger.warn(`could not delete election key ${key} (${String(first)}); retrying in the background`);
    const retrying = (async () => {
      for (const pause of backoffPauses(WITHDRAW_RETRY)) {
        await sleep(pause);
        if (!session.alive) return;
        try {
          await (token === undefined ? this.store.deleteUnique(key) : this.store.deleteOwn(key, token));
          return;
        } catch (err) {
          this.logger.debug?.(`deleting election key ${key} failed again: ${String(err)}`);
        }
      }
    })().finally(() => {
      if (this.withdrawals.get(key) === retrying) this.withdrawals.delete(key);
    });
    this.withdrawals.set(key, retrying);
  }
}
