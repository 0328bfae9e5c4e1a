/**
 * The fault classes the random schedule draws from, by name: how each is drawn (weight, duration,
 * target) and how it is made and healed on the harness. A class added elsewhere (latency through
 * the TCP proxy, auth token expiry, a stalled watch stream) is plugged in with `registerFaultClass`
 * under its name and selected like the others, through the spec's list or `FAULT_CLASSES=a,b`.
 */
import type { EtcdCluster } from '../support/etcd.js';
import type { TcpProxy } from '../support/tcp-proxy.js';
import type { FaultWorker } from './helpers.js';
import type { FaultDraw, PlannedFault } from './random-schedule.js';

/** What a fault can act on. */
export interface FaultTargets {
  cluster: EtcdCluster;
  /** One proxy per member, same index: the workers reach the cluster only through these. */
  proxies: TcpProxy[];
  workers: FaultWorker[];
}

export interface FaultClass extends FaultDraw {
  /** Makes the fault; resolves with what heals it (awaited before the next fault starts). */
  inject(targets: FaultTargets, fault: PlannedFault): Promise<() => Promise<void>>;
}

const registry = new Map<string, FaultClass>();

/** Adds (or replaces) a fault class under `name`. */
export function registerFaultClass(name: string, faultClass: FaultClass): void {
  registry.set(name, faultClass);
}

/** The classes of `names`; an unknown name fails, listing the known ones. */
export function faultClasses(names: readonly string[]): Record<string, FaultClass> {
  const unknown = names.filter(name => !registry.has(name));
  if (unknown.length > 0) throw new Error(`unknown fault class ${unknown.join(', ')} (known: ${[...registry.keys()].join(', ')})`);
  return Object.fromEntries(names.map(name => [name, registry.get(name)!]));
}

/** `FAULT_CLASSES` (comma-separated) when set, else `defaults`. */
export function selectedFaultNames(defaults: readonly string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const given = env.FAULT_CLASSES?.split(',')
    .map(s => s.trim())
    .filter(Boolean);
  return given && given.length > 0 ? given : [...defaults];
}

registerFaultClass('member-pause', {
  weight: 2,
  durationMs: [300, 3000],
  targets: 'member',
  async inject({ cluster }, fault) {
    const member = cluster.members[fault.target]!;
    member.pause();
    return async () => member.resume();
  },
});

registerFaultClass('member-kill', {
  weight: 1,
  durationMs: [300, 2000],
  targets: 'member',
  async inject({ cluster }, fault) {
    const member = cluster.members[fault.target]!;
    await member.kill('SIGKILL');
    return () => member.restart();
  },
});

registerFaultClass('leader-kill', {
  weight: 1,
  durationMs: [300, 2000],
  targets: 'none',
  async inject({ cluster }) {
    const leader = await cluster.leader({ timeoutMs: 10_000 });
    await leader.kill('SIGKILL');
    return () => leader.restart();
  },
});

/** A member's proxy in `mode` for the fault's duration, then back to `pass`. */
function proxyFault(mode: 'blackhole' | 'reset', draw: FaultDraw): FaultClass {
  return {
    ...draw,
    async inject({ proxies }, fault) {
      const proxy = proxies[fault.target]!;
      proxy.setMode(mode, { direction: (fault.options.direction ?? 'both') as 'both' | 'to-client' | 'to-server' });
      return async () => proxy.setMode('pass');
    },
  };
}

registerFaultClass(
  'proxy-blackhole',
  proxyFault('blackhole', {
    weight: 2,
    durationMs: [300, 3000],
    targets: 'member',
    options: { direction: ['both', 'to-client', 'to-server'] },
  }),
);
registerFaultClass('proxy-reset', proxyFault('reset', { weight: 2, durationMs: [100, 1500], targets: 'member' }));

registerFaultClass('holder-pause', {
  weight: 2,
  durationMs: [200, 3000],
  targets: 'worker',
  async inject({ workers }, fault) {
    const worker = workers[fault.target]!;
    await worker.stop();
    return async () => worker.cont();
  },
});

/** What the harness can do today (latency, auth and watch-stall classes are added by their own specs). */
export const HARNESS_FAULTS = ['member-pause', 'member-kill', 'leader-kill', 'proxy-blackhole', 'proxy-reset', 'holder-pause'] as const;

/** One fault as it happened. */
export interface InjectedFault {
  name: string;
  target: number;
  options: Record<string, string | number>;
  /** Offsets from the start of the operations, ms. */
  atMs: number;
  healedAtMs: number;
}

/**
 * Injects the planned faults one at a time at their offsets, until the plan ends or `done`
 * settles; a fault that is on when `done` settles is healed at once.
 */
export async function runFaults(
  plan: readonly PlannedFault[],
  classes: Readonly<Record<string, FaultClass>>,
  targets: FaultTargets,
  done: Promise<unknown>,
): Promise<InjectedFault[]> {
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  let finished = false;
  void done.finally(() => (finished = true));
  const until = (offsetMs: number) =>
    Promise.race([
      done.then(
        () => undefined,
        () => undefined,
      ),
      new Promise(resolve => setTimeout(resolve, Math.max(0, offsetMs - elapsed()))),
    ]);
  const injected: InjectedFault[] = [];
  for (const fault of plan) {
    await until(fault.atMs);
    if (finished) break;
    const atMs = elapsed();
    const heal = await classes[fault.name]!.inject(targets, fault);
    await until(atMs + fault.durationMs);
    await heal();
    injected.push({ name: fault.name, target: fault.target, options: fault.options, atMs, healedAtMs: elapsed() });
  }
  return injected;
}
