import type { ExecutionContext } from '@nestjs/common';
import { describeValue, InvalidLockArgumentError } from '../core/index.js';

/**
 * The key of a `@Locked` method: a template (`'order:{params.id}'`, `'job:{0.id}'`), a list of
 * them (locked together, deadlock-free), or a function returning one or more resource names. On a
 * controller the function receives the `ExecutionContext`; on a provider method, its arguments.
 */
export type LockKey = string | readonly string[] | ((...args: any[]) => string | readonly string[]);

/** A `{path.to.value}` placeholder; `{{` and `}}` stand for literal braces. */
const PLACEHOLDER = /\{\{|\}\}|\{([^{}]*)\}/g;

/** A lock key could not be built: a template value is missing, empty or not a scalar. */
export class LockKeyError extends InvalidLockArgumentError {
  constructor(template: string, reason: string) {
    super('lock key', `"${template}": ${reason}`);
  }
}

/** Checks a `@Locked` key when the class is defined, so a mistake fails at startup. */
export function assertLockKey(key: unknown): asserts key is LockKey {
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

/**
 * Fills `'order:{params.id}'` from `source`. A missing, empty or non-scalar value is an error,
 * never a lock on `order:undefined` or `order:[object Object]`.
 */
export function renderKeyTemplate(template: string, source: unknown): string {
  const key = template.replace(PLACEHOLDER, (match, path: string | undefined) => {
    if (path === undefined) return match[0];
    const value = lookup(source, path.trim());
    if (value === undefined || value === null || value === '') {
      throw new LockKeyError(template, `${path} is ${value === '' ? 'empty' : 'missing'}`);
    }
    if (!['string', 'number', 'bigint', 'boolean'].includes(typeof value)) {
      throw new LockKeyError(template, `${path} is ${describeValue(value)}, expected a string or number`);
    }
    return String(value);
  });
  if (key.length === 0) throw new LockKeyError(template, 'the key is empty');
  return key;
}

function lookup(source: unknown, path: string): unknown {
  if (path === '') return undefined;
  let value: unknown = source;
  for (const part of path.split('.')) {
    if (value === null || value === undefined) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}
