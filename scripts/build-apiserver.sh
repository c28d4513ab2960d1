#!/usr/bin/env bash
# Build the kube-apiserver-lite test API server used by ess-guard's end-to-end tests.
#
# usage: scripts/build-apiserver.sh [--force]
#
# This is a thin wrapper around the shared tool
#   $ESS_GUARD_SHARED/tools/kube-apiserver-lite/build.sh
# (ESS_GUARD_SHARED defaults to <repo>/../shared; see the tool's README.md).
#
# Output:   $ESS_GUARD_CACHE/apiserver/kube-apiserver-lite
# .deb cache: $ESS_GUARD_CACHE/debs
# (ESS_GUARD_CACHE defaults to $HOME/.cache/ess-guard.)
#
# The tool records a hash of its sources next to the binary and does nothing when it matches,
# so running this again is a fast no-op (about 0.1 s). A cold build takes about 3 minutes on
# 2 cores and needs about 2.2 GB of free disk and 1.3 GB of RAM.
#
# Progress goes to stderr. The last line of stdout is the path of the binary, e.g.
#   export KUBE_APISERVER_LITE_BIN=$(scripts/build-apiserver.sh | tail -n1)
set -euo pipefail

die() { echo "build-apiserver.sh: error: $*" >&2; exit 1; }

FORCE=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --force) FORCE=(--force); shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${ESS_GUARD_SHARED:-$REPO/../shared}
CACHE=${ESS_GUARD_CACHE:-$HOME/.cache/ess-guard}
TOOL=$SHARED/tools/kube-apiserver-lite/build.sh
OUT=$CACHE/apiserver
BIN=$OUT/kube-apiserver-lite

[[ -d $SHARED ]] || die "shared directory $SHARED not found (set ESS_GUARD_SHARED to the folder that holds tools/kube-apiserver-lite)"
[[ -f $TOOL ]] || die "$TOOL not found (is ESS_GUARD_SHARED=$SHARED right?)"

# Refuse to race a build that is already writing into the same output directory: build.sh
# uses OUTDIR/.build-work as its work dir and would trample the other build's files.
if command -v pgrep >/dev/null; then
  for pid in $(pgrep -f 'kube-apiserver-lite/build\.sh' || true); do
    [[ $pid == "$$" ]] && continue
    args=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null || true)
    case " $args " in
      *" $OUT "*|*" $OUT/ "*)
        die "another build into $OUT is running (pid $pid); wait for it to finish and run this again" ;;
    esac
  done
fi

mkdir -p "$CACHE/debs"
# All of build.sh's output is progress: send it to stderr so stdout carries only the path.
bash "$TOOL" "$OUT" --deb-cache "$CACHE/debs" "${FORCE[@]}" >&2 ||
  die "building kube-apiserver-lite failed (see the messages above)"

[[ -x $BIN ]] || die "build.sh finished but $BIN is missing or not executable"
echo "$BIN"
