import {
  EtcdUnavailableError,
  InvalidLockArgumentError,
  LockBusyError,
  LockClientClosedError,
  LockLostError,
  LockTimeoutError,
  type LockError,
} from '../core/index.js';

/** How a lock error is answered over HTTP. */
export interface LockHttpResponse {
  status: number;
  /** Seconds, sent as `Retry-After`. */
  retryAfter?: number;
}

/**
 * The documented mapping: busy or timed out → 409 Conflict with `Retry-After`; a bad key (such as
 * a missing template value) → 400; lock lost, etcd unavailable or shutting down → 503; etcd
 * refusing our credentials → 500 (a server misconfiguration, not the client's fault).
 */
export function lockErrorToHttp(error: LockError): LockHttpResponse {
  if (error instanceof LockBusyError || error instanceof LockTimeoutError) return { status: 409, retryAfter: 1 };
  if (error instanceof InvalidLockArgumentError) return { status: 400 };
  if (error instanceof LockLostError || error instanceof LockClientClosedError) return { status: 503 };
  if (error instanceof EtcdUnavailableError) return { status: 503, retryAfter: 1 };
  // EtcdAuthenticationError among them: a misconfigured server, not the client's fault.
  return { status: 500 };
}
