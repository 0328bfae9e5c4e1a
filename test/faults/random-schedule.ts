/**
 * The seeded random schedule of the fault suite: from one 32-bit seed, every worker's list of lock
 * operations and the timeline of faults injected while they run. The same seed gives the same
 * operations and the same faults at the same offsets (the interleaving still depends on timing),
 * so a failing run is replayed with `FAULT_SEED=<seed>`.
 *
 * Pure: nothing here touches etcd or a process. Faults are named; what a name does is in
 * `schedule-faults.ts`, so a new fault class is one entry there plus its name here.
 */

/** mulberry32: small, fast, and the same sequence on every platform for a given seed. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** A name drawn with probability proportional to its weight. */
  weighted<T extends string>(weights: Readonly<Record<T, number>>): T {
    const entries = Object.entries(weights) as Array<[T, number]>;
    let r = this.next() * entries.reduce((sum, [, w]) => sum + w, 0);
    for (const [name, weight] of entries) {
      r -= weight;
      if (r < 0) return name;
    }
    return entries.at(-1)![0];
  }
}

/** `FAULT_SEED` when set (to replay a run), else a fresh random seed. */
export function scheduleSeed(env: NodeJS.ProcessEnv = process.env): number {
  const given = env.FAULT_SEED;
  if (given !== undefined && given !== '') {
    const seed = Number(given);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`FAULT_SEED must be an integer in [0, 2^32): ${given}`);
    return seed;
  }
  return Math.floor(Math.random() * 0x100000000);
}

// ---------------------------------------------------------------------------
// Operations (run by test/workers/fault-worker.ts, command "schedule")
// ---------------------------------------------------------------------------

/**
 * One operation of a worker. Every one that gets a lock runs a critical section of `holdMs`
 * writing through the fenced store. A worker only ever waits for a resource that sorts after
 * every resource it holds (nested and held-across-ops locks included), so the schedule cannot
 * deadlock; `multi` is ordered by the library itself.
 */
export type ScheduleOp =
  | { op: 'acquire'; resource: string; waitTimeoutMs: number; holdMs: number }
  | { op: 'try'; resource: string; holdMs: number }
  /** acquire with a short wait timeout: held, or LockTimeoutError */
  | { op: 'timeout'; resource: string; waitTimeoutMs: number; holdMs: number }
  /** acquire given up through an AbortSignal after `abortAfterMs` */
  | { op: 'abort'; resource: string; abortAfterMs: number; holdMs: number }
  | { op: 'multi'; resources: string[]; waitTimeoutMs: number; holdMs: number }
  /** LockService.withLock(outer) around withLock([outer, inner]): outer re-entered, inner taken */
  | { op: 'nested'; outer: string; inner: string; waitTimeoutMs: number; holdMs: number }
  /** withLock whose section blocks the event loop for `blockMs` (synchronous spin) */
  | { op: 'block'; resource: string; waitTimeoutMs: number; blockMs: number }
  /** acquire and keep the lock across the next operations, until the matching `release` */
  | { op: 'hold'; resource: string; waitTimeoutMs: number }
  | { op: 'release'; resource: string }
  /**
   * Never drawn: for the liveness checker's negative test. Puts a key in the resource's queue on
   * the worker's lease that no handle owns, as a put landing after its acquisition gave up does.
   */
  | { op: 'orphan'; resource: string };

export type OpName = ScheduleOp['op'];
type DrawnOp = Exclude<OpName, 'release' | 'orphan'>;

export const DEFAULT_OP_WEIGHTS: Readonly<Record<DrawnOp, number>> = {
  acquire: 4,
  try: 2,
  timeout: 2,
  abort: 2,
  multi: 2,
  nested: 2,
  block: 1,
  hold: 1,
};

export interface OpPlanOptions {
  count: number;
  /** Resource names, in the order the library takes them (their keys' byte order). */
  resources: readonly string[];
  weights?: Readonly<Partial<Record<DrawnOp, number>>>;
  /** The longest section, ms (default 30). */
  maxHoldMs?: number;
  /** Wait timeout of the operations that wait, ms (default 5000). */
  waitTimeoutMs?: number;
}

/** One worker's operations. */
export function planOps(rng: Rng, options: OpPlanOptions): ScheduleOp[] {
  const { count, resources } = options;
  const weights = { ...DEFAULT_OP_WEIGHTS, ...options.weights };
  const maxHold = options.maxHoldMs ?? 30;
  const waitTimeoutMs = options.waitTimeoutMs ?? 5000;
  const ops: ScheduleOp[] = [];
  let holding: { resource: string; opsLeft: number } | undefined;
  while (ops.length < count) {
    // Resources this op may wait for: those after the one held across ops.
    const free = holding ? resources.slice(resources.indexOf(holding.resource) + 1) : [...resources];
    if (holding && (holding.opsLeft === 0 || free.length === 0 || ops.length === count - 1)) {
      ops.push({ op: 'release', resource: holding.resource });
      holding = undefined;
      continue;
    }
    const holdMs = rng.int(0, maxHold);
    // No hold while holding, nor as the last op (its release must fit).
    const kind = rng.weighted(holding || ops.length >= count - 1 ? { ...weights, hold: 0 } : weights);
    const one = rng.pick(free);
    switch (kind) {
      case 'acquire':
        ops.push({ op: 'acquire', resource: one, waitTimeoutMs, holdMs });
        break;
      case 'try':
        ops.push({ op: 'try', resource: one, holdMs });
        break;
      case 'timeout':
        ops.push({ op: 'timeout', resource: one, waitTimeoutMs: rng.int(20, 400), holdMs });
        break;
      case 'abort':
        ops.push({ op: 'abort', resource: one, abortAfterMs: rng.int(0, 400), holdMs });
        break;
      case 'block':
        ops.push({ op: 'block', resource: one, waitTimeoutMs, blockMs: rng.int(50, 300) });
        break;
      case 'multi':
      case 'nested': {
        if (free.length < 2) {
          ops.push({ op: 'acquire', resource: one, waitTimeoutMs, holdMs });
          break;
        }
        const i = rng.int(0, free.length - 2);
        const j = rng.int(i + 1, free.length - 1);
        if (kind === 'nested') ops.push({ op: 'nested', outer: free[i]!, inner: free[j]!, waitTimeoutMs, holdMs });
        else ops.push({ op: 'multi', resources: rng.next() < 0.5 ? [free[j]!, free[i]!] : [free[i]!, free[j]!], waitTimeoutMs, holdMs });
        break;
      }
      case 'hold':
        ops.push({ op: 'hold', resource: one, waitTimeoutMs });
        holding = { resource: one, opsLeft: rng.int(1, 3) };
        continue;
    }
    if (holding) holding.opsLeft--;
  }
  return ops;
}

// ---------------------------------------------------------------------------
// Faults (injected by the spec through schedule-faults.ts)
// ---------------------------------------------------------------------------

/** One fault of the timeline: what, on which target, from when, for how long. */
export interface PlannedFault {
  /** Offset from the start of the operations, ms. */
  atMs: number;
  /** A fault class name (a key of the registry in schedule-faults.ts). */
  name: string;
  /** Member or worker index, as the class reads it. */
  target: number;
  durationMs: number;
  /** Class-specific choices (e.g. a blackhole's direction), drawn from the seed too. */
  options: Record<string, string | number>;
}

/** How a fault class is drawn: its weight, its duration range, its targets and options. */
export interface FaultDraw {
  weight: number;
  durationMs: readonly [number, number];
  /** What `target` indexes: a member (a proxy), a worker, or nothing. */
  targets: 'member' | 'worker' | 'none';
  /** For each option, the values it is drawn from. */
  options?: Readonly<Record<string, readonly (string | number)[]>>;
}

export interface FaultPlanOptions {
  /** The classes to draw from, by name. */
  classes: Readonly<Record<string, FaultDraw>>;
  /** Faults start within this span, ms. */
  spanMs: number;
  members: number;
  workers: number;
  /** Healthy time between two faults, ms (default 300–1200). */
  gapMs?: readonly [number, number];
}

/** A timeline of non-overlapping faults (one at a time, so quorum is never lost). */
export function planFaults(rng: Rng, options: FaultPlanOptions): PlannedFault[] {
  const [gapLo, gapHi] = options.gapMs ?? [300, 1200];
  const weights = Object.fromEntries(Object.entries(options.classes).map(([name, c]) => [name, c.weight]));
  const faults: PlannedFault[] = [];
  for (let at = rng.int(gapLo, gapHi); at < options.spanMs;) {
    const name = rng.weighted(weights);
    const draw = options.classes[name]!;
    const durationMs = rng.int(draw.durationMs[0], draw.durationMs[1]);
    const target =
      draw.targets === 'member' ? rng.int(0, options.members - 1) : draw.targets === 'worker' ? rng.int(0, options.workers - 1) : 0;
    const chosen = Object.fromEntries(Object.entries(draw.options ?? {}).map(([key, values]) => [key, rng.pick(values)]));
    faults.push({ atMs: at, name, target, durationMs, options: chosen });
    at += durationMs + rng.int(gapLo, gapHi);
  }
  return faults;
}

export interface Schedule {
  seed: number;
  /** One list per worker. */
  ops: ScheduleOp[][];
  faults: PlannedFault[];
}

export interface ScheduleOptions {
  seed: number;
  workers: number;
  opsPerWorker: number;
  resources: readonly string[];
  ops?: Omit<OpPlanOptions, 'count' | 'resources'>;
  faults?: Omit<FaultPlanOptions, 'workers'>;
}

/** The whole schedule of a run. Each part has its own stream, so changing the faults keeps the operations. */
export function generateSchedule(options: ScheduleOptions): Schedule {
  const ops = Array.from({ length: options.workers }, (_, i) =>
    planOps(new Rng(options.seed ^ Math.imul(i + 1, 0x9e3779b1)), {
      count: options.opsPerWorker,
      resources: options.resources,
      ...options.ops,
    }),
  );
  const faults = options.faults ? planFaults(new Rng(options.seed ^ 0x85ebca6b), { ...options.faults, workers: options.workers }) : [];
  return { seed: options.seed, ops, faults };
}

/** Counts by name, e.g. of the operations or faults of a schedule. */
export function countBy<T>(items: readonly T[], nameOf: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[nameOf(item)] = (counts[nameOf(item)] ?? 0) + 1;
  return counts;
}
