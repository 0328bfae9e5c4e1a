import { hostname } from 'node:os';

/**
 * The sample app's settings, read once from the environment so that a typo fails the start
 * with the variable named, instead of surfacing later as a strange lock or an empty reply.
 */
export class AppConfig {
  /** etcd endpoints (`ETCD_HOSTS`, comma-separated). Locks and state share them. */
  readonly etcdHosts: string[];
  /** Prefix of every lock key (`LOCK_PREFIX`). */
  readonly lockPrefix: string;
  /** Lease TTL of the locks in seconds (`LOCK_TTL`): how long a crashed instance keeps its locks. */
  readonly lockTtl: number;
  /** How long a request waits for a lock before answering 409, in ms (`LOCK_WAIT_TIMEOUT_MS`). */
  readonly lockWaitTimeoutMs: number;
  /** Prefix of every state record in etcd (`STATE_PREFIX`), so that several demos can share one etcd. */
  readonly statePrefix: string;
  /** HTTP port (`PORT`); 0 picks a free one (the log line gives the URL). */
  readonly port: number;
  /** Interface to listen on (`HOST`). */
  readonly host: string;
  /** Period of the account audit job in ms (`AUDIT_INTERVAL_MS`); 0 turns it off. */
  readonly auditIntervalMs: number;
  /** Name of this instance in replies and logs (`INSTANCE_NAME`). */
  readonly instance: string;

  constructor(env: NodeJS.ProcessEnv) {
    this.etcdHosts = (env.ETCD_HOSTS ?? 'http://127.0.0.1:2379')
      .split(',')
      .map(host => host.trim())
      .filter(Boolean);
    if (this.etcdHosts.length === 0) throw new Error('ETCD_HOSTS must list at least one endpoint');
    this.lockPrefix = env.LOCK_PREFIX ?? 'sample-app/locks/';
    this.lockTtl = integer(env, 'LOCK_TTL', 10, 1);
    this.lockWaitTimeoutMs = integer(env, 'LOCK_WAIT_TIMEOUT_MS', 10_000, 0);
    this.statePrefix = env.STATE_PREFIX ?? 'sample-app/state/';
    this.port = integer(env, 'PORT', 3000, 0);
    this.host = env.HOST ?? '0.0.0.0';
    this.auditIntervalMs = integer(env, 'AUDIT_INTERVAL_MS', 5_000, 0);
    this.instance = env.INSTANCE_NAME ?? `${hostname()}:${process.pid}`;
  }
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min}, got "${raw}"`);
  return value;
}
