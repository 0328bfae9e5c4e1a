/** Runs `work` over `items` with at most `concurrency` calls in flight; results keep the items' order. */
export async function runWithConcurrency<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
  return results;
}

/** The p-th percentile (0..100) by nearest rank; NaN for no values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** A request as far as conflicts go: the keys it touched and when it was in flight. */
export interface TimedRequest {
  keys: readonly string[];
  startedAt: number;
  finishedAt: number;
}

/**
 * How many requests were in flight at the same time as another request on one of their keys:
 * the conflicts the lock had to serialize.
 */
export function countConflicting(requests: readonly TimedRequest[]): number {
  const byKey = new Map<string, TimedRequest[]>();
  for (const request of requests) {
    for (const key of request.keys) {
      const group = byKey.get(key);
      if (group) group.push(request);
      else byKey.set(key, [request]);
    }
  }
  const conflicting = new Set<TimedRequest>();
  for (const group of byKey.values()) {
    const sorted = [...group].sort((a, b) => a.startedAt - b.startedAt);
    let latest: TimedRequest | undefined;
    for (const request of sorted) {
      if (latest && request.startedAt < latest.finishedAt) conflicting.add(request).add(latest);
      if (!latest || request.finishedAt > latest.finishedAt) latest = request;
    }
  }
  return conflicting.size;
}

/** The most intervals open at one instant (touching ones do not overlap). */
export function maxAtOnce(intervals: ReadonlyArray<{ from: number; until: number }>): number {
  const edges = intervals.flatMap(({ from, until }) => [
    { at: from, step: 1 },
    { at: until, step: -1 },
  ]);
  edges.sort((a, b) => a.at - b.at || a.step - b.step);
  let open = 0;
  let most = 0;
  for (const edge of edges) most = Math.max(most, (open += edge.step));
  return most;
}
