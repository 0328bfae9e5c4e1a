import { InvalidLockArgumentError } from '../core/index.js';
import { describeValue } from '../core/keys.js';

/** A `{path.to.value}` placeholder; `{{` and `}}` stand for literal braces. */
const PLACEHOLDER = /\{\{|\}\}|\{([^{}]*)\}/g;

/** A lock key could not be built: a template value is missing, empty or not a scalar. */
export class LockKeyError extends InvalidLockArgumentError {
  constructor(template: string, reason: string) {
    super('lock key', `"${template}": ${reason}`);
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
