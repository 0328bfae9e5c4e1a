import type { ExecutionContext } from '@nestjs/common';
import { InvalidLockArgumentError } from '../core/index.js';
import { resolveTtl, resolveWaitTimeout } from '../core/options.js';
import { describeValue } from '../core/keys.js';
import { renderKeyTemplate, LockKeyError } from './lock-key.js';
import type { LockRunOptions } from './lock.service.js';

/**
 * The key of a `@Locked` method: a template (`'order:{params.id}'`, `'job:{0.id}'`), a list of
 * them (locked together, deadlock-free), or a function returning one or more resource names. On a
 * controller the function receives the `ExecutionContext`; on a provider method, its arguments.
 */
export type LockKey = string | readonly string[] | ((...args: any[]) => string | readonly string[]);

/** Options of `@Locked`. */
export interface LockedOptions {
  /** Wait at most this long for the lock, in ms (default: the module's `waitTimeout`). */
  waitTimeout?: number;
  /** Do not wait: fail with `LockBusyError` (HTTP 409) when the lock is held. */
  tryOnly?: boolean;
  /** Lease TTL in seconds for this lock, if it must differ from the module's. */
  ttl?: number;
}

export interface LockedDefinition {
  key: LockKey;
  options: LockRunOptions;
}

/** Checks a `@Locked` declaration when the class is defined, so mistakes fail at startup. */
export function defineLocked(key: LockKey, options: LockedOptions = {}): LockedDefinition {
  const templates = typeof key === 'function' ? [] : typeof key === 'string' ? [key] : key;
  if (
    typeof key !== 'function' &&
    (!Array.isArray(templates) || templates.length === 0 || templates.some(t => typeof t !== 'string' || t === ''))
  ) {
    throw new InvalidLockArgumentError(
      '@Locked key',
      `expected a non-empty template, list of templates or function, got ${describeValue(key)}`,
    );
  }
  const { waitTimeout, tryOnly, ttl, ...unknown } = options;
  const extra = Object.keys(unknown)[0];
  if (extra !== undefined) throw new InvalidLockArgumentError(`@Locked option ${extra}`, 'unknown option');
  if (tryOnly !== undefined && typeof tryOnly !== 'boolean') {
    throw new InvalidLockArgumentError('@Locked option tryOnly', `expected a boolean, got ${describeValue(tryOnly)}`);
  }
  return {
    key,
    options: {
      waitTimeout: waitTimeout === undefined ? undefined : resolveWaitTimeout(waitTimeout, '@Locked option waitTimeout'),
      ttl: ttl === undefined ? undefined : resolveTtl(ttl, '@Locked option ttl'),
      tryOnly,
    },
  };
}

/**
 * Resource names for one call: templates filled from `source`, or the key function's result. A
 * single key gives a string and a list gives a list (even if its names coincide), so the handler
 * always gets the same kind of lock: a LockHandle, or a LockSet.
 */
export function resolveResources(key: LockKey, source: unknown, fnArgs: unknown[]): string | string[] {
  if (typeof key === 'function') {
    const value = key(...fnArgs);
    const names = typeof value === 'string' ? [value] : value;
    if (!Array.isArray(names) || names.length === 0 || names.some(n => typeof n !== 'string' || n === '')) {
      throw new LockKeyError(
        key.name || 'key function',
        `returned ${describeValue(value)}, expected a non-empty string or list of strings`,
      );
    }
    return typeof value === 'string' ? value : [...names];
  }
  return typeof key === 'string' ? renderKeyTemplate(key, source) : key.map(template => renderKeyTemplate(template, source));
}

/** What templates of a controller's `@Locked` can read: `params`, `query`, `body`, `headers`, `user`; `payload` in RPC and WebSocket handlers. */
export function keySource(context: ExecutionContext): Record<string, unknown> {
  switch (context.getType()) {
    case 'http': {
      const request = context.switchToHttp().getRequest();
      return { params: request.params, query: request.query, body: request.body, headers: request.headers, user: request.user };
    }
    case 'rpc':
      return { payload: context.switchToRpc().getData() };
    case 'ws':
      return { payload: context.switchToWs().getData() };
    default:
      return { args: context.getArgs() };
  }
}
