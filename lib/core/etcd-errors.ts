import {
  EtcdAuthenticationFailedError,
  EtcdPermissionDeniedError,
  EtcdInvalidAuthTokenError,
  EtcdRoleNotGrantedError,
  EtcdUserNotFoundError,
  GRPCUnauthenticatedError,
} from 'etcd3';
import { EtcdAuthenticationError, EtcdUnavailableError, LockError } from './errors.js';

/**
 * Turns whatever the etcd3 client threw into one of our typed errors, keeping the original as
 * `cause`. Our own errors pass through untouched.
 */
export function toLockError(err: unknown, during: string): LockError {
  if (err instanceof LockError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (
    err instanceof EtcdAuthenticationFailedError ||
    err instanceof EtcdPermissionDeniedError ||
    err instanceof EtcdInvalidAuthTokenError ||
    err instanceof EtcdRoleNotGrantedError ||
    err instanceof EtcdUserNotFoundError ||
    err instanceof GRPCUnauthenticatedError ||
    // With auth on, etcd answers a request that carries no credentials with InvalidArgument.
    /etcdserver: user name is empty/.test(message)
  ) {
    return new EtcdAuthenticationError(`${during}: ${message}`, { cause: err });
  }
  return new EtcdUnavailableError(`${during}: ${message}`, { cause: err });
}
