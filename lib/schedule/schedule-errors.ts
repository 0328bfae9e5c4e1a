import { InvalidLockArgumentError } from '../core/index.js';

/**
 * A `@OncePerTick` declaration that cannot work: no schedule to take ticks from, an unusable
 * name, or a name two jobs share. Raised when the class is defined or at bootstrap, before any
 * tick runs.
 */
export class InvalidScheduleError extends InvalidLockArgumentError {
  constructor(
    /** The method at fault, as `Class.method`. */
    readonly method: string,
    reason: string,
  ) {
    super(`@OncePerTick on ${method}`, reason);
  }
}
