/**
 * `@LeaderOnly` and `ElectionService` over the in-memory elections: two applications sharing one
 * ledger elect one leader; only it runs leader-only provider methods and `@Interval`, `@Timeout` and `@Cron` jobs, with the
 * leadership's fencing token in `lockService.current()`; a loss hands over, and the loser campaigns again.
 */
import { Injectable, Module, type INestApplication } from '@nestjs/common';
import { Cron, Interval, ScheduleModule, Timeout } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import { firstValueFrom } from 'rxjs';
import { filter } from 'rxjs/operators';
import { ElectionService, InvalidLockArgumentError, LeaderOnly, LockService, type LockHandle } from '../../../lib/index.js';
import { EtcdLockTestingModule, InMemoryElectionLedger, InMemoryElections } from '../../../lib/testing/index.js';
import { waitFor } from '../../support/wait.js';

@Injectable()
class Jobs {
  intervalRuns = 0;
  constructor(readonly locks: LockService) {}

  @LeaderOnly()
  report(label: string): { label: string; token: bigint } {
    const lock = this.locks.current() as LockHandle;
    return { label, token: lock.fencingToken };
  }

  @Interval(20)
  @LeaderOnly()
  tick(): void {
    this.intervalRuns++;
  }

  timeoutRuns = 0;
  laterTimeoutFired = false;
  cronRuns = 0;

  @Timeout(30)
  @LeaderOnly()
  once(): void {
    this.timeoutRuns++;
  }

  /** Not leader-only: tells the test that the @Timeout above has had its turn. */
  @Timeout(80)
  later(): void {
    this.laterTimeoutFired = true;
  }

  @Cron('* * * * * *')
  @LeaderOnly()
  everySecond(): void {
    this.cronRuns++;
  }

  /** Takes `r` itself: inside a caller's `withLock('r')` it must re-enter, not queue behind the caller. */
  @LeaderOnly()
  nested(): Promise<string> {
    return this.locks.withLock('r', () => 'inner', { waitTimeout: 500 });
  }

  @LeaderOnly('other')
  other(): string {
    return 'ran';
  }
}

async function app(ledger: InMemoryElectionLedger, value: string): Promise<INestApplication> {
  @Module({
    imports: [ScheduleModule.forRoot(), EtcdLockTestingModule.forRoot({ electionLedger: ledger, election: { value } })],
    providers: [Jobs],
  })
  class AppModule {}
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  const nest = moduleRef.createNestApplication({ logger: false });
  await nest.init();
  return nest;
}

describe('@LeaderOnly over in-memory elections', () => {
  let ledger: InMemoryElectionLedger;
  let a: INestApplication;
  let b: INestApplication;

  beforeEach(async () => {
    ledger = new InMemoryElectionLedger();
    a = await app(ledger, 'a');
    await waitFor(() => a.get(ElectionService).isLeader(), { message: 'a leads' });
    b = await app(ledger, 'b');
  });
  afterEach(async () => {
    await a?.close();
    await b?.close();
  });

  it('runs only on the leader, with the leadership fencing token in lockService.current()', async () => {
    const leadership = a.get(ElectionService).leadership()!;
    expect(a.get(Jobs).report('x')).toEqual({ label: 'x', token: leadership.fencingToken });
    expect(b.get(Jobs).report('x')).toBeUndefined();
    // No campaign in election "other": nobody runs it.
    expect(a.get(Jobs).other()).toBeUndefined();
    await waitFor(() => a.get(Jobs).intervalRuns >= 3, { message: 'the leader runs its @Interval job' });
    expect(b.get(Jobs).intervalRuns).toBe(0);
    expect((await b.get(ElectionService).leader('default'))?.value).toBe('a');
  });

  it("keeps the caller's locks: a nested withLock on a resource the caller holds re-enters it", async () => {
    const locks = a.get(LockService);
    await expect(locks.withLock('r', () => a.get(Jobs).nested())).resolves.toBe('inner');
  });

  it('auto-campaign campaigns again after a resign() on the Leadership itself, behind the next leader', async () => {
    await a.get(ElectionService).leadership()!.resign();
    await waitFor(() => b.get(ElectionService).isLeader(), { message: 'b leads' });
    await waitFor(() => a.get(InMemoryElections).campaigning('default'), { message: 'a campaigns again' });
    expect(a.get(ElectionService).isLeader()).toBe(false);
  });

  it('gates @Timeout and @Cron jobs too: they run on the leader only', async () => {
    await waitFor(() => b.get(Jobs).laterTimeoutFired && a.get(Jobs).cronRuns >= 1, {
      timeoutMs: 3000,
      message: "b's later timeout and a cron run on a",
    });
    expect(a.get(Jobs).timeoutRuns).toBe(1);
    expect(b.get(Jobs).timeoutRuns).toBe(0);
    expect(b.get(Jobs).cronRuns).toBe(0);
  });

  it('a lost leadership hands over to the next candidate; the loser campaigns again and follows', async () => {
    const first = a.get(ElectionService).leadership()!;
    const handedOver = firstValueFrom(
      b
        .get(ElectionService)
        .observe('default')
        .pipe(filter(leader => leader?.value === 'b')),
    );
    a.get(InMemoryElections).loseLeadership();
    expect(first.lost).toBe(true);
    expect(a.get(Jobs).report('x')).toBeUndefined();
    const leader = await handedOver;
    await waitFor(() => b.get(ElectionService).isLeader(), { message: 'b leads' });
    expect(leader!.fencingToken).toBeGreaterThan(first.fencingToken);
    expect(b.get(Jobs).report('y')).toEqual({ label: 'y', token: leader!.fencingToken });
    // a campaigns again, behind b: once b's application shuts down (resigning), a leads again.
    await waitFor(() => a.get(InMemoryElections).campaigning('default'), { message: 'a campaigns again' });
    await b.close();
    await waitFor(() => a.get(ElectionService).isLeader(), { message: 'a leads again' });
    expect(a.get(ElectionService).leadership()!.fencingToken).toBeGreaterThan(leader!.fencingToken);
  });

  it('refuses bad election names when the class is defined and at bootstrap', () => {
    expect(() => LeaderOnly('a/b')).toThrow(InvalidLockArgumentError);
    expect(() => LeaderOnly('')).toThrow(InvalidLockArgumentError);
    expect(() => EtcdLockTestingModule.forRoot({ election: { name: 'bad name' } })).toThrow(InvalidLockArgumentError);
    expect(() => EtcdLockTestingModule.forRoot({ election: { nme: 'x' } as never })).toThrow(InvalidLockArgumentError);
  });
});
