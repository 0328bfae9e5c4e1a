import { BadRequestException, Body, Controller, Get, Param, Post, Query } from '@nestjs/common';
import { CurrentLock, Locked, type LockSet } from '../../lib/index.js';
import { AppConfig } from '../config/app-config.js';
import { LockWaitMs } from '../lock-wait/lock-wait.js';
import { AccountsService } from './accounts.service.js';
import { AuditJob } from './audit.job.js';

interface TransferBody {
  from?: unknown;
  to?: unknown;
  amount?: unknown;
}

/** Balances and transfers between accounts. */
@Controller()
export class AccountsController {
  constructor(
    private readonly accounts: AccountsService,
    private readonly audits: AuditJob,
    private readonly config: AppConfig,
  ) {}

  /** The last audit of the books (declared before `accounts/:id`, which would match it). */
  @Get('accounts/audit')
  async lastAudit() {
    return (await this.audits.lastAudit()) ?? {};
  }

  /**
   * A statement of several accounts (`?accounts=alice,bob&pauseMs=5`), read under their shared
   * locks: statements run together, transfers wait for them and they for transfers.
   */
  @Get('statements')
  async statement(@Query('accounts') accounts: unknown, @Query('pauseMs') pause: unknown) {
    const ids = typeof accounts === 'string' ? [...new Set(accounts.split(',').filter(Boolean))] : [];
    if (ids.length === 0) throw new BadRequestException('accounts must list at least one account, comma-separated');
    const pauseMs = pause === undefined ? 0 : Number(pause);
    if (!Number.isInteger(pauseMs) || pauseMs < 0 || pauseMs > 1000)
      throw new BadRequestException('pauseMs must be an integer between 0 and 1000');
    return { ...(await this.accounts.statement(ids, pauseMs)), instance: this.config.instance };
  }

  @Get('accounts/:id')
  async account(@Param('id') id: string) {
    return { account: id, balance: await this.accounts.balance(id) };
  }

  /**
   * Moves money between two accounts, holding both accounts' locks. The library takes them in
   * one canonical order, so transfers a→b and b→a running at once cannot deadlock.
   */
  @Post('transfers')
  @Locked(['account:{body.from}', 'account:{body.to}'])
  async transfer(@Body() body: TransferBody, @CurrentLock() lock: LockSet, @LockWaitMs() lockWaitMs: number) {
    const { from, to, amount } = body;
    if (from === to) throw new BadRequestException('from and to must be different accounts');
    if (typeof amount !== 'number' || !Number.isInteger(amount) || amount <= 0) {
      throw new BadRequestException('amount must be a positive integer');
    }
    const fromAccount = String(from);
    const toAccount = String(to);
    const fencingTokens = { from: lock.fencingToken(`account:${fromAccount}`), to: lock.fencingToken(`account:${toAccount}`) };
    const result = await this.accounts.transfer(fromAccount, toAccount, amount, fencingTokens);
    return {
      from: fromAccount,
      to: toAccount,
      amount,
      ...result,
      fencingTokens: { from: fencingTokens.from.toString(), to: fencingTokens.to.toString() },
      lockWaitMs,
      instance: this.config.instance,
    };
  }
}
