/**
 * The one door into lib/core for the package's other layers (lib/nest, lib/schedule,
 * lib/testing, lib/health). The root entry point re-exports only ./public-api.js.
 */
export * from './public-api.js';

// Internal: shared with the other layers, not part of the package's API (no entry point exports it).
export { backoffPauses } from './backoff.js';
export { runWhileHeld } from './handle.js';
export { compareResources, describeValue, resourcePrefix, waiterKey } from './keys.js';
export { silentLogger } from './logger.js';
export { resolveTtl, resolveWaitTimeout } from './options.js';
export type { ClaimLease, ClaimedKey, PutAnswer } from './tick-claims.js';
export { WaitScope } from './wait-scope.js';
export { assertElectionName, assertElectionPrefix, assertElectionValue } from './election-errors.js';
export type { Candidacy } from './elections.js';
export { EXCLUSIVE, modeOfKey, modeSuffix, resolveLockMode, sameMode } from './lock-mode.js';
export { splitQueue, turnOf } from './queue-turn.js';
