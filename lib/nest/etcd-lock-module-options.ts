import type { LockClientOptions, LockLogger } from '../core/index.js';
import type { ElectionModuleOptions } from './election-options.js';

/** Options of `EtcdLockModule.forRoot()` / `forRootAsync()`: the client's options plus a few of the module's own. */
export interface EtcdLockModuleOptions extends Omit<LockClientOptions, 'logger'>, ElectionModuleOptions {
  /**
   * Do not connect at startup; the first lock connects. By default the module grants its lease
   * during bootstrap, so that an unreachable etcd or a bad credential fails the start (after
   * `dialTimeout`) instead of the first request.
   */
  lazyConnect?: boolean;
  /**
   * Register {@link LockExceptionFilter} globally, mapping lock errors to HTTP statuses
   * (409 + Retry-After, 400, 503). Default `true`; set `false` to map them yourself.
   */
  httpExceptionFilter?: boolean;
  /** Where warnings go: a logger, `false` for silence, default Nest's `Logger`. */
  logger?: LockLogger | false;
  /** Log every lock event (waiting, acquired, released, lost, failed) at debug level. Default `false`. */
  debug?: boolean;
}
