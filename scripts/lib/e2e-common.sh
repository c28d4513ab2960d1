# Shared set-up of the end-to-end scripts (scripts/e2e.sh, scripts/e2e-migration.sh), sourced
# by them, not run: where the repository and shared/ are, and the outside tools the e2e tests
# need (kubectl, kube-apiserver-lite, Helm 3 and 4). One copy, so the two scripts find their
# tools the same way. The caller sets E2E_NAME (its name in messages) before sourcing.

die() { echo "$E2E_NAME: error: $*" >&2; exit 1; }
say() { echo "$E2E_NAME: $*" >&2; }

# Prints the comment block at the top of script $1 (its --help).
e2e_usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$1"; }

# cd to the repository; export ESS_GUARD_SHARED (default: ../shared next to the repository);
# set CACHE (scripts/get-helm.sh's folder); check cargo and kubectl ($1: what kubectl is for).
e2e_enter_repo() {
  REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  cd "$REPO"
  export ESS_GUARD_SHARED=${ESS_GUARD_SHARED:-$REPO/../shared}
  CACHE=${ESS_GUARD_CACHE:-$HOME/.cache/ess-guard}
  command -v cargo >/dev/null || die "cargo not found"
  [[ -x /usr/bin/kubectl ]] || die "/usr/bin/kubectl not found ($1)"
}

# Exports KUBE_APISERVER_LITE_BIN: the given one when it is executable, else the one
# scripts/build-apiserver.sh builds (a no-op when the cached binary's source hash matches).
e2e_apiserver() {
  if [[ -n ${KUBE_APISERVER_LITE_BIN:-} && -x ${KUBE_APISERVER_LITE_BIN} ]]; then
    say "using KUBE_APISERVER_LITE_BIN=$KUBE_APISERVER_LITE_BIN"
    export KUBE_APISERVER_LITE_BIN
    return
  fi
  say "building kube-apiserver-lite if needed (scripts/build-apiserver.sh)"
  local bin
  bin=$(scripts/build-apiserver.sh | tail -n1) || die "scripts/build-apiserver.sh failed"
  [[ -x $bin ]] || die "scripts/build-apiserver.sh printed '$bin', which is not an executable"
  export KUBE_APISERVER_LITE_BIN=$bin
}

# Exports ESS_GUARD_HELM3/ESS_GUARD_HELM4, from $CACHE/bin/helm{3,4} where unset. Fails (status
# 1) when either is still missing; the caller decides whether that skips or dies.
e2e_helm() {
  local v var
  for v in 3 4; do
    var=ESS_GUARD_HELM$v
    if [[ -z ${!var:-} && -x $CACHE/bin/helm$v ]]; then
      export "$var=$CACHE/bin/helm$v"
    fi
  done
  [[ -n ${ESS_GUARD_HELM3:-} && -n ${ESS_GUARD_HELM4:-} ]]
}
