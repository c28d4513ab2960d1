#!/usr/bin/env bash
# End-to-end tier: ess-guard against a real Kubernetes API server (kube-apiserver-lite), and
# as Helm's post-renderer (Helm 3 and Helm 4) reading the live marker.
#
# usage: scripts/e2e.sh [--require-all] [-- CARGO_TEST_ARGS...]
#
#   1. builds the API server if needed (scripts/build-apiserver.sh: a no-op when the cached
#      binary's source hash matches; a cold build takes about 3 minutes) and exports
#      KUBE_APISERVER_LITE_BIN;
#   2. runs `cargo test --test live_e2e` (fails rather than skips: the server was just built);
#   3. runs `cargo test --test helm_live_e2e` when that test file is present, with
#      ESS_GUARD_HELM3 / ESS_GUARD_HELM4 from the environment or from
#      $ESS_GUARD_CACHE/bin/helm{3,4} (scripts/get-helm.sh installs them). Without them the
#      Helm tests print "skipped: ..." -- unless --require-all (or ESS_GUARD_REQUIRE_ALL=1),
#      which makes a missing Helm a failure.
#   4. runs `cargo test --test migration_e2e` (the real chart through the whole migration;
#      scripts/e2e-migration.sh runs it alone), with the same Helm rule as step 3.
#   Arguments after `--` go to the cargo test runs (e.g. a test-name filter, --nocapture).
#
# Each test starts its own server on a free port of 127.0.0.1 in a temporary directory and
# stops it (SIGTERM to its own PID) when done; nothing outside those directories is touched.
#
# ---------------------------------------------------------------------------------------------
# Read-only checks against YOUR cluster
#
# These send only GET requests (no write, no watch), with the same kubeconfig/context/namespace
# rules as kubectl and Helm (--kubeconfig or KUBECONFIG, --kube-context or HELM_KUBECONTEXT,
# -n or HELM_NAMESPACE, then the context's namespace):
#
#   KUBECONFIG=~/.kube/config ess-guard markers get -r <release> -n <namespace>
#       the stored MATRIX_STACK_MSC3861 marker of ConfigMap <release>-markers and its labels
#       (-o json for scripts); one GET of that ConfigMap.
#
#   KUBECONFIG=~/.kube/config ess-guard plan -r <release> -n <namespace>
#       where the release is in the legacy_auth -> syn2mas_migrated -> delegated_auth
#       migration, which steps are allowed next, and the exact next `helm upgrade` command.
#       One GET of the marker; when no marker is stored it also reads the deployed Helm release
#       record (list secrets) and Synapse's StatefulSet (get statefulsets) to tell a fresh
#       install from a release that predates markers. Those two reads are optional: without
#       permission ess-guard warns (marker-evidence-unchecked) and keeps "absent".
#
# RBAC, per command (namespaced, core group unless noted):
#   post-render, check --live, plan, markers get   get configmaps (<release>-markers)
#     + when no marker is stored (optional)         list secrets; get statefulsets (apps)
#   values --reuse-values                          list secrets (+ get configmaps with --live)
#   recover (dry run)                              list statefulsets (apps)
#     + when no StatefulSet carries the annotation  list secrets (Helm's release history)
#   recover --apply                                list, patch statefulsets (apps)
# Any failure to read the marker exits 3 and names the cause; pass --state <state> to decide
# without the cluster.
# ---------------------------------------------------------------------------------------------
set -euo pipefail

E2E_NAME=e2e.sh
# shellcheck source=scripts/lib/e2e-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/e2e-common.sh"

REQUIRE_ALL=${ESS_GUARD_REQUIRE_ALL:-0}
CARGO_ARGS=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --require-all) REQUIRE_ALL=1; shift ;;
    --) shift; CARGO_ARGS=("$@"); break ;;
    -h|--help) e2e_usage "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

e2e_enter_repo "the tests create objects with it"

started=$SECONDS

e2e_apiserver

say "cargo test --test live_e2e"
ESS_GUARD_REQUIRE_ALL=1 cargo test --test live_e2e ${CARGO_ARGS[@]+"${CARGO_ARGS[@]}"}

if [[ -f tests/helm_live_e2e.rs ]]; then
  if e2e_helm; then
    helm_require=1
  else
    [[ $REQUIRE_ALL == 1 ]] && die "Helm binaries not found (set ESS_GUARD_HELM3/ESS_GUARD_HELM4 or run scripts/get-helm.sh)"
    say "Helm binaries not found: the Helm tests will print 'skipped' (run scripts/get-helm.sh)"
    helm_require=0
  fi
  say "cargo test --test helm_live_e2e"
  ESS_GUARD_REQUIRE_ALL=$helm_require cargo test --test helm_live_e2e ${CARGO_ARGS[@]+"${CARGO_ARGS[@]}"}
fi

if [[ -f tests/migration_e2e.rs ]]; then
  # The whole migration on the real chart (scripts/e2e-migration.sh runs it alone).
  say "cargo test --test migration_e2e"
  ESS_GUARD_REQUIRE_ALL=${helm_require:-$REQUIRE_ALL} cargo test --test migration_e2e ${CARGO_ARGS[@]+"${CARGO_ARGS[@]}"}
fi

say "end-to-end tier passed in $((SECONDS - started)) s"
