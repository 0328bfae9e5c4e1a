import { Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { LockBusyError, LockHandle, LockService, Locked } from '../../lib/index.js';
import { AppConfig } from '../config/app-config.js';
import { FencedStore } from '../state/fenced-store.js';
import { AccountsService, OPENING_BALANCE } from './accounts.service.js';

/** The outcome of one audit, kept in etcd for every instance to see. */
export interface AuditRecord {
  at: string;
  /** The etcd revision at which the balances were read. */
  revision: string;
  accounts: number;
  total: number;
  expectedTotal: number;
  /** Money was neither created nor lost: the total is what the accounts opened with. */
  consistent: boolean;
  auditedBy: string;
}

const AUDIT_RECORD = 'audit/last';

/**
 * A periodic job that every instance schedules but only one runs per period: it checks that the
 * transfers, racing across all instances, neither created nor lost money. `@Locked` with
 * `tryOnly` makes the instances take turns; the one that finds the lock taken skips the round.
 */
@Injectable()
export class AuditJob implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(AuditJob.name);
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly accounts: AccountsService,
    private readonly store: FencedStore,
    private readonly locks: LockService,
    private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    if (this.config.auditIntervalMs > 0) this.timer = setInterval(() => this.tick(), this.config.auditIntervalMs);
  }

  /** Stops the schedule and lets a running audit finish while the lock client is still open. */
  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  lastAudit(): Promise<AuditRecord | undefined> {
    return this.store.read<AuditRecord>(AUDIT_RECORD);
  }

  /**
   * Audits the balances unless another instance did so within the period. The snapshot is read
   * at one etcd revision, and each transfer is one transaction, so the total is exact even while
   * transfers run. Resolves `undefined` when skipped; rejects with `LockBusyError` when another
   * instance is auditing right now.
   */
  @Locked('audit', { tryOnly: true })
  async audit(): Promise<AuditRecord | undefined> {
    const last = await this.lastAudit();
    if (last && Date.now() - Date.parse(last.at) < this.config.auditIntervalMs) return undefined;
    const { revision, balances } = await this.accounts.snapshot();
    const total = [...balances.values()].reduce((sum, balance) => sum + balance, 0);
    const expectedTotal = balances.size * OPENING_BALANCE;
    const audit: AuditRecord = {
      at: new Date().toISOString(),
      revision,
      accounts: balances.size,
      total,
      expectedTotal,
      consistent: total === expectedTotal,
      auditedBy: this.config.instance,
    };
    await this.store.updateOne(AUDIT_RECORD, this.fencingToken(), () => audit);
    if (!audit.consistent) this.logger.error(`audit at revision ${revision}: total ${total}, expected ${expectedTotal}`);
    return audit;
  }

  private tick(): void {
    this.running ??= this.audit()
      .then(
        () => undefined,
        (err: unknown) => {
          if (!(err instanceof LockBusyError)) this.logger.warn(`audit failed: ${err instanceof Error ? err.message : String(err)}`);
        },
      )
      .finally(() => (this.running = undefined));
  }

  /** The token of the lock `@Locked` holds around `audit()`. */
  private fencingToken(): bigint {
    const lock = this.locks.current();
    if (!(lock instanceof LockHandle)) throw new Error('audit() must run under its @Locked lock');
    return lock.fencingToken;
  }
}
