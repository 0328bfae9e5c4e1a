import { LockError } from '../core/index.js';
import type { TickRunner } from './tick-runner.js';

const RUNNERS = Symbol('nest-etcd-lock:tick-runners');
type Bound = { [RUNNERS]?: Map<string | symbol, TickRunner> };

/**
 * Where a `@OncePerTick` wrapper finds its job's runner: bound to each discovered instance at
 * bootstrap (so several applications in one process keep their own claims).
 */
export const tickRuntime = {
  bind(instance: object, method: string | symbol, runner: TickRunner): void {
    const bound = instance as Bound;
    if (!Object.hasOwn(bound, RUNNERS)) Object.defineProperty(bound, RUNNERS, { value: new Map(), configurable: true });
    bound[RUNNERS]!.set(method, runner);
  },
  runnerFor(instance: unknown, method: string | symbol, label: string): TickRunner {
    const runner = (instance as Bound | undefined)?.[RUNNERS]?.get(method);
    if (!runner) throw new LockError(`@OncePerTick method ${label} called, but no EtcdLockScheduleModule found it at bootstrap`);
    return runner;
  },
};
