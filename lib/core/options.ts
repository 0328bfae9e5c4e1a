import type { Etcd3, IOptions } from 'etcd3';
import { InvalidLockArgumentError } from './errors.js';
import { describeValue } from './keys.js';
import { silentLogger, type LockLogger } from './logger.js';

/** Options of {@link EtcdLockClient}, and of `EtcdLockModule.forRoot()`. */
export interface LockClientOptions {
  /** etcd endpoints, e.g. `'http://127.0.0.1:2379'` or a list of cluster members. Default `http://127.0.0.1:2379`. */
  hosts?: string | string[];
  /** etcd user and password (etcd's auth must be enabled). */
  auth?: { username: string; password: string };
  /** TLS material for `https://` endpoints. */
  credentials?: { rootCertificate: Buffer; privateKey?: Buffer; certChain?: Buffer };
  /** Prefix of every lock key. Default `'locks/'`. */
  prefix?: string;
  /** Lease TTL in whole seconds: how long a crashed holder keeps its locks. Default 10. */
  ttl?: number;
  /** Default time to wait for a lock, in ms (`Infinity` waits for ever). Default 30 000. */
  waitTimeout?: number;
  /** How long connecting to etcd (granting the first lease) may take, in ms. Default 5 000. */
  dialTimeout?: number;
  /** Deadline of each etcd request, in ms. Default 5 000. */
  requestTimeout?: number;
  /** Logger for warnings (and debug lines, when it has `debug`). Default: silent. */
  logger?: LockLogger;
  /** An etcd3 client to use instead of creating one; it is not closed by `close()`. */
  client?: Etcd3;
  /** Further etcd3 client options (gRPC options, fault handling), merged over ours. */
  etcdOptions?: IOptions;
}

export interface ResolvedLockOptions {
  hosts: string[];
  auth?: { username: string; password: string };
  credentials?: LockClientOptions['credentials'];
  prefix: string;
  ttl: number;
  waitTimeout: number;
  dialTimeout: number;
  requestTimeout: number;
  logger: LockLogger;
  client?: Etcd3;
  etcdOptions?: IOptions;
}

const KNOWN_OPTIONS = new Set<string>([
  'hosts',
  'auth',
  'credentials',
  'prefix',
  'ttl',
  'waitTimeout',
  'dialTimeout',
  'requestTimeout',
  'logger',
  'client',
  'etcdOptions',
]);

/** Validates options up front, so a typo fails at bootstrap with the field named. */
export function resolveLockOptions(options: LockClientOptions = {}): ResolvedLockOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidLockArgumentError('options', `expected an object, got ${describeValue(options)}`);
  }
  for (const name of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(name)) throw new InvalidLockArgumentError(name, 'unknown option');
  }
  const hosts = resolveHosts(options.hosts);
  if (options.auth !== undefined) {
    const { username, password } = options.auth ?? {};
    if (typeof username !== 'string' || username === '' || typeof password !== 'string') {
      throw new InvalidLockArgumentError('auth', 'expected { username: non-empty string, password: string }');
    }
  }
  if (options.credentials !== undefined && !Buffer.isBuffer(options.credentials?.rootCertificate)) {
    throw new InvalidLockArgumentError('credentials', 'rootCertificate must be a Buffer');
  }
  const prefix = options.prefix ?? 'locks/';
  if (typeof prefix !== 'string') throw new InvalidLockArgumentError('prefix', `expected a string, got ${describeValue(prefix)}`);
  const logger = options.logger ?? silentLogger;
  if (typeof logger?.warn !== 'function' || typeof logger.error !== 'function') {
    throw new InvalidLockArgumentError('logger', 'expected an object with warn() and error()');
  }
  return {
    hosts,
    auth: options.auth,
    credentials: options.credentials,
    prefix,
    ttl: resolveTtl(options.ttl ?? 10),
    waitTimeout: resolveWaitTimeout(options.waitTimeout ?? 30_000, 'waitTimeout'),
    dialTimeout: positiveMs(options.dialTimeout ?? 5_000, 'dialTimeout'),
    requestTimeout: positiveMs(options.requestTimeout ?? 5_000, 'requestTimeout'),
    logger,
    client: options.client,
    etcdOptions: options.etcdOptions,
  };
}

/** A lease TTL: whole seconds, at least 1 (etcd may demand more; the session checks). */
export function resolveTtl(ttl: unknown, field = 'ttl'): number {
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1) {
    throw new InvalidLockArgumentError(field, `expected a whole number of seconds >= 1, got ${describeValue(ttl)}`);
  }
  return ttl;
}

/** A wait timeout in ms: 0 means "do not wait" (try-only), `Infinity` means "wait for ever". */
export function resolveWaitTimeout(ms: unknown, field = 'waitTimeout'): number {
  if (typeof ms !== 'number' || Number.isNaN(ms) || ms < 0) {
    throw new InvalidLockArgumentError(field, `expected milliseconds >= 0 or Infinity, got ${describeValue(ms)}`);
  }
  return ms;
}

function positiveMs(ms: unknown, field: string): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) {
    throw new InvalidLockArgumentError(field, `expected a positive number of milliseconds, got ${describeValue(ms)}`);
  }
  return ms;
}

function resolveHosts(hosts: unknown): string[] {
  const list = hosts === undefined ? ['http://127.0.0.1:2379'] : typeof hosts === 'string' ? hosts.split(',') : hosts;
  if (!Array.isArray(list) || list.length === 0) {
    throw new InvalidLockArgumentError('hosts', `expected a URL or a non-empty list of URLs, got ${describeValue(hosts)}`);
  }
  return list.map(host => {
    const value = typeof host === 'string' ? host.trim() : host;
    if (typeof value !== 'string' || !/^(https?:\/\/)?[^\s/]+:\d+\/?$/.test(value)) {
      throw new InvalidLockArgumentError('hosts', `expected URLs like http://127.0.0.1:2379, got ${describeValue(host)}`);
    }
    return value;
  });
}
