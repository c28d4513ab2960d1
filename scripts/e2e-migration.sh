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

die() { echo "e2e-migration.sh: error: $*" >&2; exit 1; }

IGNORED=()
CARGO_ARGS=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --with-ignored) IGNORED=(--include-ignored); shift ;;
    --) shift; CARGO_ARGS=("$@"); break ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
export ESS_GUARD_SHARED=${ESS_GUARD_SHARED:-$REPO/../shared}
CACHE=${ESS_GUARD_CACHE:-$HOME/.cache/ess-guard}
[[ -x /usr/bin/kubectl ]] || die "/usr/bin/kubectl not found (the suite inspects the cluster with it)"

if [[ -z ${KUBE_APISERVER_LITE_BIN:-} || ! -x ${KUBE_APISERVER_LITE_BIN} ]]; then
  KUBE_APISERVER_LITE_BIN=$(scripts/build-apiserver.sh | tail -n1) || die "scripts/build-apiserver.sh failed"
fi
export KUBE_APISERVER_LITE_BIN
for v in 3 4; do
  var=ESS_GUARD_HELM$v
  if [[ -z ${!var:-} && -x $CACHE/bin/helm$v ]]; then export "$var=$CACHE/bin/helm$v"; fi
  [[ -n ${!var:-} ]] || die "$var is unset and $CACHE/bin/helm$v is missing (run scripts/get-helm.sh)"
done

started=$SECONDS
ESS_GUARD_REQUIRE_ALL=1 cargo test --test migration_e2e -- --nocapture ${IGNORED[@]+"${IGNORED[@]}"} ${CARGO_ARGS[@]+"${CARGO_ARGS[@]}"}
echo "e2e-migration.sh: passed in $((SECONDS - started)) s" >&2
