import 'reflect-metadata';
import { describeValue, type TickOverlap } from '../core/index.js';
import { copyMethodMetadata } from '../nest/copy-method-metadata.js';
import { InvalidScheduleError } from './schedule-errors.js';
import { tickRuntime } from './tick-runtime.js';

/** Options of `@OncePerTick`. */
export interface OncePerTickOptions {
  /**
   * The job's name, the same on every instance: its ticks' keys are `<prefix><name>/<time>`.
   * Letters, digits and `. _ : -`, at most 200 characters. Default `Class.method`.
   */
  name?: string;
  /**
   * When a tick comes while the job's previous run is still going (on any instance): `'forbid'`
   * (default) skips the tick everywhere; `'allow'` runs it on one instance anyway.
   */
  overlap?: TickOverlap;
}

/** What `@OncePerTick` records on the method, for the explorer to read at bootstrap. */
export interface OncePerTickDefinition {
  /** The name given, if any (the default needs the class name, known only at bootstrap). */
  name: string | undefined;
  overlap: TickOverlap;
}

export const ONCE_PER_TICK_METADATA = 'nest-etcd-lock:once-per-tick';

const NAME = /^[A-Za-z0-9._:-]{1,200}$/;

/**
 * Runs a scheduled method on one instance per tick, across every instance that shares the tick
 * prefix. Put it on a `@Cron` method, above or below `@Cron`:
 *
 * ```ts
 * @Cron('0 *\/5 * * * *')
 * @OncePerTick({ name: 'digest' })
 * sendDigest() { ... }
 * ```
 * Each tick is identified by its scheduled time; the instance whose claim creates the tick's key
 * in etcd runs it, with the claim's lock (`lockService.current()`, `@CurrentLock()`: fencing
 * token and signal) around the call. The others skip it quietly (a `skipped` tick event, a debug
 * line) and the method returns `undefined` there. Needs `EtcdLockScheduleModule`.
 */
export function OncePerTick(options: OncePerTickOptions = {}): MethodDecorator {
  const definition = defineOncePerTick(options);
  return (target, propertyKey, descriptor: PropertyDescriptor) => {
    const original = descriptor.value as (...args: unknown[]) => unknown;
    const method = `${target.constructor.name}.${String(propertyKey)}`;
    if (typeof original !== 'function') throw new InvalidScheduleError(method, 'it decorates something that is not a method');
    if (Reflect.hasOwnMetadata(ONCE_PER_TICK_METADATA, original)) throw new InvalidScheduleError(method, 'it is applied twice');
    const oncePerTick = async function (this: object, ...args: unknown[]): Promise<unknown> {
      return tickRuntime.runnerFor(this, propertyKey, method).run(() => original.apply(this, args));
    };
    copyMethodMetadata(original, oncePerTick);
    Reflect.defineMetadata(ONCE_PER_TICK_METADATA, definition, oncePerTick);
    descriptor.value = oncePerTick;
    return descriptor;
  };
}

/** Checks the options when the class is defined. */
function defineOncePerTick(options: OncePerTickOptions): OncePerTickDefinition {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidScheduleError('a method', `expected options { name?, overlap? }, got ${describeValue(options)}`);
  }
  const { name, overlap = 'forbid', ...unknown } = options;
  const extra = Object.keys(unknown)[0];
  if (extra !== undefined) throw new InvalidScheduleError('a method', `unknown option ${extra}`);
  if (name !== undefined) assertJobName(name, 'a method');
  if (overlap !== 'forbid' && overlap !== 'allow') {
    throw new InvalidScheduleError('a method', `option overlap: expected 'forbid' or 'allow', got ${describeValue(overlap)}`);
  }
  return { name, overlap };
}

/** A job name ends up inside etcd keys: no `/` (it would nest one job's keys under another's), nothing empty. */
export function assertJobName(name: unknown, method: string): asserts name is string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new InvalidScheduleError(method, `name must be 1 to 200 letters, digits or . _ : - (no /), got ${describeValue(name)}`);
  }
}
