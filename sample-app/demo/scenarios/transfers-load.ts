import { getJson, requestJson, type JsonReply } from '../http-json.js';
import { runWithConcurrency } from '../load.js';
import { lockWaitOf, range, succeeded } from './replies.js';

export interface TransfersLoad {
  accounts: readonly string[];
  transfers: number;
  concurrency: number;
  /** Amounts are drawn from 1..maxAmount. */
  maxAmount: number;
  /** Seed of the pseudo-random pairs and amounts, so that a run can be repeated. */
  seed: number;
}

export interface Transfer {
  from: string;
  to: string;
  amount: number;
  reply: JsonReply;
  lockWaitMs?: number;
}

export interface TransfersRun {
  load: TransfersLoad;
  transfers: Transfer[];
  succeeded: Transfer[];
  /** Refused for lack of funds (422): correct behaviour, not a failure. */
  insufficientFunds: number;
  openingBalances: Map<string, number>;
  finalBalances: Map<string, number>;
  /** Opening balances plus the successful transfers. */
  expectedBalances: Map<string, number>;
  totalBefore: number;
  totalAfter: number;
  /** No money created or lost. */
  conserved: boolean;
  /** Every balance is exactly what the successful transfers make it. */
  balancesMatch: boolean;
}

/** Random transfers in both directions between `accounts`, spread round-robin over `urls`. */
export async function runTransfersLoad(urls: readonly string[], load: TransfersLoad): Promise<TransfersRun> {
  const random = mulberry32(load.seed);
  const plan = range(load.transfers).map(() => {
    const from = load.accounts[Math.floor(random() * load.accounts.length)];
    const others = load.accounts.filter(account => account !== from);
    const to = others[Math.floor(random() * others.length)];
    return { from, to, amount: 1 + Math.floor(random() * load.maxAmount) };
  });
  const openingBalances = await readBalances(urls[0], load.accounts);
  const transfers = await runWithConcurrency(plan, load.concurrency, async (transfer, i) => {
    const reply = await requestJson('POST', `${urls[i % urls.length]}/transfers`, transfer);
    return { ...transfer, reply, lockWaitMs: lockWaitOf(reply) };
  });
  const finalBalances = await readBalances(urls[0], load.accounts);
  const ok = transfers.filter(transfer => succeeded(transfer.reply));
  const expectedBalances = new Map(openingBalances);
  for (const { from, to, amount } of ok) {
    expectedBalances.set(from, expectedBalances.get(from)! - amount);
    expectedBalances.set(to, expectedBalances.get(to)! + amount);
  }
  const totalBefore = sum(openingBalances);
  const totalAfter = sum(finalBalances);
  return {
    load,
    transfers,
    succeeded: ok,
    insufficientFunds: transfers.filter(transfer => transfer.reply.status === 422).length,
    openingBalances,
    finalBalances,
    expectedBalances,
    totalBefore,
    totalAfter,
    conserved: totalBefore === totalAfter,
    balancesMatch: load.accounts.every(account => finalBalances.get(account) === expectedBalances.get(account)),
  };
}

async function readBalances(url: string, accounts: readonly string[]): Promise<Map<string, number>> {
  const balances = new Map<string, number>();
  for (const account of accounts) balances.set(account, Number((await getJson(`${url}/accounts/${encodeURIComponent(account)}`)).balance));
  return balances;
}

function sum(balances: Map<string, number>): number {
  return [...balances.values()].reduce((total, balance) => total + balance, 0);
}

/** A tiny seeded PRNG (public domain), so the demo's load is the same on every run. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
