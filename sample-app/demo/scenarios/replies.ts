import type { JsonReply } from '../http-json.js';

/** A 2xx: the instance says the change is done. */
export function succeeded(reply: JsonReply): boolean {
  return reply.status >= 200 && reply.status < 300;
}

/** The `lockWaitMs` an instance reported, if any. */
export function lockWaitOf(reply: JsonReply): number | undefined {
  return typeof reply.body.lockWaitMs === 'number' ? reply.body.lockWaitMs : undefined;
}

/** Short description of a failed reply: status and error name, e.g. `503 LockLostError`. */
export function failureOf(reply: JsonReply): string {
  if (reply.status === 0) return `no answer (${reply.error})`;
  return `${reply.status} ${typeof reply.body.error === 'string' ? reply.body.error : ''}`.trim();
}

export function range(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i);
}
