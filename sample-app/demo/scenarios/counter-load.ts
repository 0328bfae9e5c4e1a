import { getJson, requestJson, type JsonReply } from '../http-json.js';
import { runWithConcurrency } from '../load.js';
import { lockWaitOf, range, succeeded } from './replies.js';

export interface CounterLoad {
  counter: string;
  requests: number;
  concurrency: number;
  /** Use the UNLOCKED control endpoint instead of the locked one. */
  unlocked?: boolean;
}

export interface CounterIncrement {
  reply: JsonReply;
  /** The value the instance says it wrote (successes only). */
  value?: number;
  fencingToken?: bigint;
  lockWaitMs?: number;
}

export interface CounterRun {
  load: CounterLoad;
  increments: CounterIncrement[];
  succeeded: CounterIncrement[];
  finalValue: number;
  /**
   * Successful increments the final value does not account for, or that wrote a value another
   * success also wrote. Both mean one read-modify-write overwrote another.
   */
  lostUpdates: number;
  /** Ordered by the value written, the fencing tokens strictly rise; undefined without tokens. */
  tokensRising: boolean | undefined;
}

/** Increments one fresh counter `requests` times, spreading the requests round-robin over `urls`. */
export async function runCounterLoad(urls: readonly string[], load: CounterLoad): Promise<CounterRun> {
  const path = `${load.unlocked ? 'unlocked-counters' : 'counters'}/${encodeURIComponent(load.counter)}`;
  const increments = await runWithConcurrency(range(load.requests), load.concurrency, async (_, i) => {
    const reply = await requestJson('POST', `${urls[i % urls.length]}/${path}/increment`);
    const { value, fencingToken } = reply.body;
    return {
      reply,
      value: succeeded(reply) && typeof value === 'number' ? value : undefined,
      fencingToken: typeof fencingToken === 'string' ? BigInt(fencingToken) : undefined,
      lockWaitMs: lockWaitOf(reply),
    };
  });
  const finalValue = Number((await getJson(`${urls[0]}/${path}`)).value);
  const ok = increments.filter(increment => succeeded(increment.reply));
  const distinctValues = new Set(ok.map(increment => increment.value)).size;
  return {
    load,
    increments,
    succeeded: ok,
    finalValue,
    lostUpdates: Math.max(0, ok.length - finalValue, ok.length - distinctValues),
    tokensRising: tokensRise(ok),
  };
}

function tokensRise(increments: CounterIncrement[]): boolean | undefined {
  if (increments.some(increment => increment.fencingToken === undefined)) return undefined;
  const byValue = [...increments].sort((a, b) => a.value! - b.value!);
  return byValue.every((increment, i) => i === 0 || increment.fencingToken! > byValue[i - 1].fencingToken!);
}
