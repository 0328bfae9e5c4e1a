#!/usr/bin/env bash
# `npm test`: every test, across the etcd matrix. Lints, type-checks and builds, runs the whole Jest suite
# on etcd 3.6 (the default line), then on 3.4, 3.5 and 3.7 the suites whose outcome depends on the
# server's behaviour (core — which holds the etcdctl and Go Mutex interop specs —, contract, faults,
# nest, election — which holds the etcdctl elect interop spec; less the client-only specs listed
# below). Each run's log starts with its server's `etcd Version:` line (printed by Jest's global
# setup, which also builds the pinned etcd when missing). Exits non-zero if any run failed.
#
#   MATRIX_LINES="3.5 3.7" npm test    # only those non-default lines after the 3.6 run
#   npm run test:one -- [jest args]    # one line (ETCD_VERSION, default 3.6), no matrix
set -uo pipefail
cd "$(dirname "$0")/.."

npm run --silent lint || exit 1
npm run --silent typecheck || exit 1
npm run --silent build || exit 1

JEST=(node --experimental-vm-modules node_modules/jest/bin/jest.js)
SERVER_SUITES=(test/core test/contract test/faults test/nest test/election)
# Left to the 3.6 run: specs of the client's own arithmetic that no server difference can change
# (herd request counts, the held-throughout deadline checks, byte delays in our TCP proxy). They take
# ~100 s a line, which keeps CI under its 30 minutes on 2 cores.
CLIENT_ONLY=(test/core/waiter-herds.spec.ts test/nest/held-throughout.spec.ts test/faults/latency.spec.ts)
DEFAULT_LINE=3.6
OTHER_LINES=(${MATRIX_LINES-3.4 3.5 3.7})

summary=()
failed=0
run_line() {
  local line=$1
  shift
  local started=$SECONDS
  echo
  echo "=== etcd ${line}: ${*:-all suites} ==="
  # A bound per run, so that a wedged run fails CI with its name instead of using up CI's budget.
  if ETCD_VERSION=$line timeout --kill-after=30 "${RUN_TIMEOUT_S:-1200}" "${JEST[@]}" "$@"; then
    summary+=("etcd ${line}: passed ($((SECONDS - started)) s; ${*:-all suites})")
  else
    summary+=("etcd ${line}: FAILED ($((SECONDS - started)) s; ${*:-all suites})")
    failed=1
  fi
}

run_line "$DEFAULT_LINE"
for line in "${OTHER_LINES[@]}"; do
  run_line "$line" "${SERVER_SUITES[@]}" --testPathIgnorePatterns "${CLIENT_ONLY[@]}"
done

echo
echo "=== etcd matrix (${SECONDS} s) ==="
printf '%s\n' "${summary[@]}"
exit $failed
