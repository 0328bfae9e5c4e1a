import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, UnprocessableEntityException } from '@nestjs/common';
import { LockService } from '../../lib/index.js';
import { FencedStore } from '../state/fenced-store.js';

/** Every account opens with this balance on first use: a sample app has no sign-up flow. */
export const OPENING_BALANCE = 1000;

const RECORD_PREFIX = 'accounts/';

interface Account {
  balance: number;
}

/** Result of a transfer: both balances after it. */
export interface TransferResult {
  fromBalance: number;
  toBalance: number;
}

export class InsufficientFundsException extends UnprocessableEntityException {
  constructor(account: string, balance: number, amount: number) {
    super({ statusCode: 422, error: 'InsufficientFunds', message: `account ${account} holds ${balance}, cannot send ${amount}` });
  }
}

/** A statement of several accounts: their balances, all read while no transfer between them could run. */
export interface Statement {
  balances: Record<string, number>;
  total: number;
  /** When the locks were held, in ms since the epoch (`performance.timeOrigin` based: comparable between the processes of one machine). */
  heldFrom: number;
  heldUntil: number;
}

/**
 * Account balances in etcd. Writers (transfers) hold the accounts' locks exclusively and pass
 * their fencing tokens; statements hold them shared, so they run beside each other but never
 * beside a transfer.
 */
@Injectable()
export class AccountsService {
  constructor(
    private readonly store: FencedStore,
    private readonly locks: LockService,
  ) {}

  async balance(accountId: string): Promise<number> {
    return (await this.store.read<Account>(record(accountId)))?.balance ?? OPENING_BALANCE;
  }

  /** Moves `amount` between two accounts in one etcd transaction: money is never created or lost. */
  async transfer(from: string, to: string, amount: number, tokens: { from: bigint; to: bigint }): Promise<TransferResult> {
    const writes = [
      { record: record(from), token: tokens.from },
      { record: record(to), token: tokens.to },
    ];
    const [source, target] = await this.store.update<Account>(writes, ([source, target]) => {
      const fromBalance = source?.balance ?? OPENING_BALANCE;
      const toBalance = target?.balance ?? OPENING_BALANCE;
      if (fromBalance < amount) throw new InsufficientFundsException(from, fromBalance, amount);
      return [{ balance: fromBalance - amount }, { balance: toBalance + amount }];
    });
    return { fromBalance: source.balance, toBalance: target.balance };
  }

  /**
   * The balances of `accounts`, read one by one with `pauseMs` between reads: the shared locks
   * alone keep a transfer from moving money between two of the reads (which would make the
   * total wrong), while other statements read on.
   */
  statement(accounts: readonly string[], pauseMs: number): Promise<Statement> {
    return this.locks.withLock(
      accounts.map(account => `account:${account}`),
      async () => {
        const heldFrom = performance.timeOrigin + performance.now();
        const balances: Record<string, number> = {};
        for (const [i, account] of accounts.entries()) {
          if (i > 0) await sleep(pauseMs);
          balances[account] = await this.balance(account);
        }
        const total = Object.values(balances).reduce((sum, balance) => sum + balance, 0);
        return { balances, total, heldFrom, heldUntil: performance.timeOrigin + performance.now() };
      },
      { shared: true },
    );
  }

  /** Every opened account's balance, read at one etcd revision. */
  async snapshot(): Promise<{ revision: string; balances: Map<string, number> }> {
    const { revision, records } = await this.store.readAll<Account>(RECORD_PREFIX);
    const balances = new Map([...records].map(([name, account]) => [name.slice(RECORD_PREFIX.length), account.balance]));
    return { revision, balances };
  }
}

function record(accountId: string): string {
  return `${RECORD_PREFIX}${accountId}`;
}
