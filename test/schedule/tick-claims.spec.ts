import { LockHandle } from '../../lib/index.js';
import type { ClaimLease, PutAnswer, TickClaimRequest } from '../../lib/core/tick-claims.js';
import { TickSchedule } from '../../lib/schedule/tick-schedule.js';
import { InMemoryTickClaims, InMemoryTickLedger } from '../../lib/testing/index.js';
import { waitFor } from '../support/wait.js';

/** Claims whose backend commits a put but loses the answer, as when etcd3 retries a call that already committed. */
class AnswerLost extends InMemoryTickClaims {
  lostAnswers = 1;
  delayMs = 0;
  protected override async putIfAbsent(keys: { tick: string; running?: string }, value: string, lease: ClaimLease): Promise<PutAnswer> {
    const answer = await super.putIfAbsent(keys, value, lease);
    if (this.delayMs) await new Promise(resolve => setTimeout(resolve, this.delayMs));
    if (this.lostAnswers-- > 0) throw new Error('deadline exceeded (the put committed)');
    return answer;
  }
}

function request(overrides: Partial<TickClaimRequest> = {}): TickClaimRequest {
  return { job: 'job', scheduledAt: new Date(), windowMs: 500, overlap: 'forbid', ...overrides };
}

describe('tick claims (in memory: the same rules as on etcd)', () => {
  it('a retried put that finds its own key has won: the tick runs here, once', async () => {
    const ledger = new InMemoryTickLedger();
    const claims = new AnswerLost(ledger);
    const tick = request();
    const result = await claims.claim(tick);
    expect(result.won).toBe(true);
    const other = await new InMemoryTickClaims(ledger).claim(tick);
    expect(other).toEqual({ won: false, reason: 'claimed-elsewhere' });
    if (result.won) await result.lock.release();
    await claims.close();
    expect(ledger.keyNames()).toEqual([]);
  });

  it('a claim answered after the skew window does not run (another instance may have run and freed the tick) and leaves no key', async () => {
    const ledger = new InMemoryTickLedger();
    const claims = new AnswerLost(ledger);
    claims.lostAnswers = 0;
    claims.delayMs = 120;
    const result = await claims.claim(request({ scheduledAt: new Date(Date.now() - 50), windowMs: 100 }));
    expect(result).toEqual({ won: false, reason: 'late' });
    await claims.close();
    expect(ledger.keyNames()).toEqual([]);
  });

  it('keeps the tick key for 2·S after the tick, then deletes it; the running key goes when the job ends', async () => {
    const ledger = new InMemoryTickLedger();
    const claims = new InMemoryTickClaims(ledger);
    const scheduledAt = new Date(Date.now());
    const result = await claims.claim(request({ scheduledAt, windowMs: 300 }));
    if (!result.won) throw new Error('not won');
    expect(result.lock).toBeInstanceOf(LockHandle);
    expect(ledger.keyNames().sort()).toEqual([`ticks/job/${scheduledAt.toISOString()}`, 'ticks/job/running']);
    await result.lock.release();
    expect(ledger.keyNames()).toEqual([`ticks/job/${scheduledAt.toISOString()}`]);
    expect(await new InMemoryTickClaims(ledger).claim(request({ scheduledAt, windowMs: 300 }))).toEqual({
      won: false,
      reason: 'claimed-elsewhere',
    });
    await waitFor(() => ledger.keyNames().length === 0, { timeoutMs: 2000 });
    expect(Date.now()).toBeGreaterThanOrEqual(scheduledAt.getTime() + 600);
  });

  it('a lost lease aborts the running tick and takes its keys (the next tick may then run elsewhere)', async () => {
    const ledger = new InMemoryTickLedger();
    const claims = new InMemoryTickClaims(ledger);
    const result = await claims.claim(request());
    if (!result.won) throw new Error('not won');
    claims.loseLease();
    expect(result.lock.signal.aborted).toBe(true);
    expect(ledger.keyNames()).toEqual([]);
    await result.lock.release();
  });
});

describe('TickSchedule', () => {
  const at = (iso: string) => Date.parse(iso);

  it('maps a call within S of a scheduled time to it, early or late, and nothing outside', () => {
    const everySecond = new TickSchedule('* * * * * *');
    expect(everySecond.windowMs).toBe(500);
    expect(everySecond.tickAt(at('2030-01-01T00:00:00.000Z'))?.toISOString()).toBe('2030-01-01T00:00:00.000Z');
    expect(everySecond.tickAt(at('2030-01-01T00:00:00.499Z'))?.toISOString()).toBe('2030-01-01T00:00:00.000Z');
    expect(everySecond.tickAt(at('2030-01-01T00:00:00.501Z'))?.toISOString()).toBe('2030-01-01T00:00:01.000Z');
    const everyFive = new TickSchedule('0 */5 * * * *');
    expect(everyFive.windowMs).toBe(1000);
    expect(everyFive.tickAt(at('2030-01-01T00:04:59.100Z'))?.toISOString()).toBe('2030-01-01T00:05:00.000Z');
    expect(everyFive.tickAt(at('2030-01-01T00:05:00.900Z'))?.toISOString()).toBe('2030-01-01T00:05:00.000Z');
    expect(everyFive.tickAt(at('2030-01-01T00:05:01.100Z'))).toBeUndefined();
  });

  it('takes S from the shortest gap of an irregular schedule, and reads a one-off date', () => {
    expect(new TickSchedule('0,1 * * * * *').windowMs).toBe(500);
    const once = new TickSchedule(new Date('2031-06-01T12:00:00Z'));
    expect(once.windowMs).toBe(1000);
    expect(once.tickAt(at('2031-06-01T11:59:59.500Z'))?.toISOString()).toBe('2031-06-01T12:00:00.000Z');
  });
});
