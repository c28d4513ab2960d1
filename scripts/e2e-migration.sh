#!/usr/bin/env bash
# The migration end-to-end suite alone (tests/migration_e2e.rs): the real matrix-stack chart
# (26.8.2-dev and the pr1584 build), real Helm 3 and Helm 4, kube-apiserver-lite with its Job
# simulator, ess-guard as the post-renderer reading the live marker.
#
# usage: scripts/e2e-migration.sh [--with-ignored] [-- CARGO_TEST_ARGS...]
#
#   Builds the API server if needed (scripts/build-apiserver.sh) and takes Helm from
#   $ESS_GUARD_HELM3/$ESS_GUARD_HELM4 or $ESS_GUARD_CACHE/bin/helm{3,4} (scripts/get-helm.sh).
#   Runs with ESS_GUARD_REQUIRE_ALL=1: a missing tool fails, it never skips.
#   --with-ignored also runs tests marked #[ignore] (none today).
#   Prints the wall time of each scenario and of the whole suite.
set -euo pipefail

E2E_NAME=e2e-migration.sh
# shellcheck source=scripts/lib/e2e-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/e2e-common.sh"

IGNORED=()
CARGO_ARGS=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --with-ignored) IGNORED=(--include-ignored); shift ;;
    --) shift; CARGO_ARGS=("$@"); break ;;
    -h|--help) e2e_usage "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

e2e_enter_repo "the suite inspects the cluster with it"
e2e_apiserver
e2e_helm || die "ESS_GUARD_HELM3/ESS_GUARD_HELM4 are unset and $CACHE/bin/helm{3,4} are missing (run scripts/get-helm.sh)"

started=$SECONDS
ESS_GUARD_REQUIRE_ALL=1 cargo test --test migration_e2e -- --nocapture ${IGNORED[@]+"${IGNORED[@]}"} ${CARGO_ARGS[@]+"${CARGO_ARGS[@]}"}
echo "e2e-migration.sh: passed in $((SECONDS - started)) s" >&2
