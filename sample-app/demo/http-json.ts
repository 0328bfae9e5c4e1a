/** One HTTP exchange with a sample-app instance. */
export interface JsonReply {
  /** HTTP status; 0 when no answer came (connection refused, reset, timed out). */
  status: number;
  body: Record<string, unknown>;
  /** Why no answer came, when `status` is 0. */
  error?: string;
  startedAt: number;
  finishedAt: number;
}

/** Sends a JSON request and never throws: a missing answer is a reply with status 0. */
export async function requestJson(method: 'GET' | 'POST', url: string, body?: unknown, timeoutMs = 15_000): Promise<JsonReply> {
  const startedAt = performance.now();
  try {
    const res = await fetch(url, {
      method,
      headers: body === undefined ? undefined : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    return { status: res.status, body: parse(text), startedAt, finishedAt: performance.now() };
  } catch (err) {
    const error = err instanceof Error ? `${err.name}: ${err.message}${causeOf(err)}` : String(err);
    return { status: 0, body: {}, error, startedAt, finishedAt: performance.now() };
  }
}

/**
 * GET that expects a 200, for reading state after a run. While etcd recovers (no answer or a 5xx)
 * it asks again every 100 ms, for up to `retryForMs`.
 */
export async function getJson(url: string, retryForMs = 10_000): Promise<Record<string, unknown>> {
  const deadline = performance.now() + retryForMs;
  for (;;) {
    const reply = await requestJson('GET', url);
    if (reply.status === 200) return reply.body;
    const transient = reply.status === 0 || reply.status >= 500;
    if (!transient || performance.now() >= deadline) {
      throw new Error(`GET ${url}: ${reply.status} ${reply.error ?? JSON.stringify(reply.body)}`);
    }
    await new Promise(resolve => setTimeout(resolve, 100));
  }
}

function parse(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : { value };
  } catch {
    return { text };
  }
}

function causeOf(err: Error): string {
  return err.cause instanceof Error ? ` (${err.cause.message})` : '';
}
