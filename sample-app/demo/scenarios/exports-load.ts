import { requestJson, type JsonReply } from '../http-json.js';
import { runWithConcurrency } from '../load.js';
import { range, succeeded } from './replies.js';

export interface ExportsLoad {
  exports: number;
  concurrency: number;
  workMs: number;
}

export interface ExportsRun {
  load: ExportsLoad;
  replies: JsonReply[];
  succeeded: number;
  /** The semaphore's size, as the instances report it. */
  slots: number;
  /** The most exports any one saw running at once across the instances (counted in etcd). */
  maxRunningAtOnce: number;
}

/** Asks every instance, round-robin, for more exports at once than the semaphore lets run. */
export async function runExportsLoad(urls: readonly string[], load: ExportsLoad): Promise<ExportsRun> {
  const replies = await runWithConcurrency(range(load.exports), load.concurrency, (_, i) =>
    requestJson('POST', `${urls[i % urls.length]}/exports`, { workMs: load.workMs }),
  );
  const ok = replies.filter(succeeded);
  return {
    load,
    replies,
    succeeded: ok.length,
    slots: Math.max(0, ...ok.map(reply => Number(reply.body.slots))),
    maxRunningAtOnce: Math.max(0, ...ok.map(reply => Number(reply.body.runningAtOnce))),
  };
}
