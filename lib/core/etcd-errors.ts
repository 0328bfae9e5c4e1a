import { isBrokenCircuitError, isBulkheadRejectedError, isIsolatedCircuitError, isTaskCancelledError } from 'cockatiel';
import {
  ClientClosedError,
  ClientRuntimeError,
  EtcdAuthenticationFailedError,
  EtcdError,
  EtcdInvalidAuthTokenError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  EtcdRoleNotGrantedError,
  EtcdUserNotFoundError,
  EtcdWatchStreamEnded,
  GRPCAlreadyExistsError,
  GRPCDataLossError,
  GRPCGenericError,
  GRPCInvalidArgumentError,
  GRPCNotImplementedError,
  GRPCOutOfRangeError,
  GRPCUnauthenticatedError,
} from 'etcd3';
import {
  EtcdAuthenticationError,
  EtcdRequestError,
  EtcdUnavailableError,
  LockClientClosedError,
  LockError,
  LockLostError,
} from './errors.js';

/**
 * Turns whatever the etcd3 client threw into one of our typed errors, keeping the original as
 * `cause`. Our own errors pass through untouched. Only {@link EtcdUnavailableError} is worth
 * retrying: the others say the same thing however often the request is sent.
 * @param resource the lock concerned, if any: a lease etcd no longer knows loses it.
 */
export function toLockError(err: unknown, during: string, resource?: string): LockError {
  if (err instanceof LockError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof ClientClosedError) return new LockClientClosedError({ cause: err });
  if (err instanceof EtcdLeaseInvalidError) {
    return new LockLostError(resource ?? during, 'etcd reports that the lease no longer exists', { cause: err });
  }
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
  if (isTransient(err)) return new EtcdUnavailableError(`${during}: ${message}`, { cause: err });
  return new EtcdRequestError(`${during}: ${message}`, { cause: err });
}

/** gRPC statuses that reject the request itself; sending it again gets the same answer. */
const PERMANENT_GRPC_ERRORS = [
  GRPCInvalidArgumentError,
  GRPCNotImplementedError,
  GRPCOutOfRangeError,
  GRPCAlreadyExistsError,
  GRPCDataLossError,
];

/**
 * A network or server condition that may pass: a gRPC failure other than the permanent ones
 * (unavailable, deadline, cancelled, internal...), or etcd's own transient refusals ("leader
 * changed", "request timed out", "too many requests"), or a host shut out by etcd3's circuit
 * breaker. Anything else (the etcd3 client closed or
 * confused, a response that does not decode, a bug of ours) is permanent.
 */
function isTransient(err: unknown): boolean {
  if (err instanceof ClientRuntimeError) return false;
  // etcd3's circuit breaker shutting a host out for a while after failures.
  if (isBrokenCircuitError(err) || isIsolatedCircuitError(err) || isBulkheadRejectedError(err) || isTaskCancelledError(err)) return true;
  if (/Failed to parse server response|etcd response: /.test(err instanceof Error ? err.message : '')) return false;
  if (err instanceof GRPCGenericError) return !PERMANENT_GRPC_ERRORS.some(type => err instanceof type);
  return err instanceof EtcdError || err instanceof EtcdWatchStreamEnded;
}
