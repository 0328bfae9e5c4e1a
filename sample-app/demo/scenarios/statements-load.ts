import { requestJson, type JsonReply } from '../http-json.js';
import { maxAtOnce, runWithConcurrency } from '../load.js';
import { range, succeeded } from './replies.js';

export interface StatementsLoad {
  accounts: readonly string[];
  statements: number;
  concurrency: number;
  /** Pause between the reads of one statement, so that an unlocked transfer could slip in. */
  pauseMs: number;
}

export interface StatementsRun {
  load: StatementsLoad;
  replies: JsonReply[];
  succeeded: number;
  /** The totals the statements found (all equal when no transfer ran in the middle of one). */
  totals: number[];
  /** The most statements holding their shared locks at one instant. */
  maxReadersAtOnce: number;
}

/** Statements of all `accounts`, read under shared locks, spread round-robin over `urls`. */
export async function runStatementsLoad(urls: readonly string[], load: StatementsLoad): Promise<StatementsRun> {
  const query = `accounts=${load.accounts.map(encodeURIComponent).join(',')}&pauseMs=${load.pauseMs}`;
  const replies = await runWithConcurrency(range(load.statements), load.concurrency, (_, i) =>
    requestJson('GET', `${urls[i % urls.length]}/statements?${query}`),
  );
  const ok = replies.filter(succeeded);
  return {
    load,
    replies,
    succeeded: ok.length,
    totals: ok.map(reply => Number(reply.body.total)),
    maxReadersAtOnce: maxAtOnce(ok.map(reply => ({ from: Number(reply.body.heldFrom), until: Number(reply.body.heldUntil) }))),
  };
}
