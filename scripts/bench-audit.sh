#!/usr/bin/env bash
# Benchmark `ess-guard audit -A` on kube-apiserver-lite with a growing fleet of releases.
#
# One server; the fleet grows to each size in turn (default 10, 100, 1000 releases, one
# namespace each: a Helm release Secret for the deployed revision and one superseded, a marker
# ConfigMap and a Synapse StatefulSet per release, from examples/audit_fixtures.rs). At each
# size `ess-guard audit -A --format json` runs RUNS times; the script prints the median and the
# fastest wall time, the API calls the audit made (from its JSON) and its peak RSS, as a
# Markdown table for BENCHMARKS.md.
#
# Every Helm record stores a real render as its manifest (--manifest, default
# ess-renders/legacy.yaml, 72 KB) so that decoding costs what it costs on a cluster; real records
# also embed the chart's templates, which these do not.
#
# Usage: scripts/bench-audit.sh [--sizes "10 100 1000"] [--runs 5] [--profile release|dev] [--manifest FILE]
# Needs KUBE_APISERVER_LITE_BIN (or scripts/build-apiserver.sh's default location), kubectl,
# and ESS_GUARD_SHARED or ../shared for the server's start/stop scripts.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
shared=${ESS_GUARD_SHARED:-$repo/../shared}
bin_server=${KUBE_APISERVER_LITE_BIN:-$HOME/.cache/ess-guard/apiserver/kube-apiserver-lite}
sizes="10 100 1000" runs=5 profile=release manifest=$shared/ess-renders/legacy.yaml
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) sizes=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --manifest) manifest=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "bench-audit: unknown argument $1" >&2; exit 2 ;;
  esac
done
tools=$shared/tools/kube-apiserver-lite
[ -x "$bin_server" ] || { echo "bench-audit: no API server binary at $bin_server" >&2; exit 2; }

cd "$repo"
if [ "$profile" = release ]; then
  cargo build --release --quiet; bin=$repo/target/release/ess-guard
else
  cargo build --quiet; bin=$repo/target/debug/ess-guard
fi
cargo build --quiet --example audit_fixtures
gen=$repo/target/debug/examples/audit_fixtures

work=$(mktemp -d)
state=$work/state
cleanup() { "$tools/stop.sh" "$state" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
exports=$("$tools/start.sh" "$state" --bin "$bin_server" --timeout 120 2>"$work/start.log") ||
  { cat "$work/start.log" >&2; exit 1; }
eval "$exports"
[ -n "${KUBECONFIG:-}" ] || { echo "bench-audit: start.sh gave no KUBECONFIG" >&2; exit 1; }

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
have=0
echo "ess-guard $("$bin" --version | cut -d' ' -f2) ($profile), manifest $(basename "$manifest") per Helm record"
echo
echo "| releases | objects (Secrets, ConfigMaps, StatefulSets) | API calls | wall time, median of $runs | fastest | peak RSS |"
echo "|---:|---:|---:|---:|---:|---:|"
for n in $sizes; do
  if [ "$n" -gt "$have" ]; then
    "$gen" fleet-namespaces "$have" "$n" | kubectl create -f - >/dev/null
    "$gen" fleet "$have" "$n" "$manifest" | kubectl create -f - >/dev/null
    have=$n
  fi
  times=()
  calls="" rss=""
  for _ in $(seq "$runs"); do
    start=$(date +%s%N)
    /usr/bin/time -f '%M' -o "$work/rss" "$bin" audit -A --format json --kubeconfig "$KUBECONFIG" >"$work/out.json" || true
    end=$(date +%s%N)
    times+=($(( (end - start) / 1000000 )))
    calls=$(grep -o '"api_calls": [0-9]*' "$work/out.json" | head -1 | grep -o '[0-9]*$')
    releases=$(grep -c '"release": ' "$work/out.json" || true)
    rss=$(tail -1 "$work/rss")
  done
  [ "$releases" -eq "$n" ] || { echo "bench-audit: audit saw $releases releases, expected $n" >&2; exit 1; }
  med=$(printf '%s\n' "${times[@]}" | median)
  min=$(printf '%s\n' "${times[@]}" | sort -n | head -1)
  echo "| $n | $((n * 4)) | $calls | ${med} ms | ${min} ms | $((rss / 1024)) MB |"
done
