#!/usr/bin/env bash
# Benchmark `ess-guard diff` against GNU `diff -u` on the same pair of files.
#
# GNU diff only gives a useful answer when both files list the resources in the same order, so
# the pair is first rewritten with its documents sorted by kind, namespace and name; both tools
# then read exactly the same two files. ess-guard does more work (parses YAML, matches by
# identity, normalises, redacts Secrets), so this measures what that costs.
#
# Usage: scripts/bench-diff.sh [OLD NEW] [--scale N] [--runs N]
#   OLD NEW   helm template renders (default: ess-renders step1-workers → step2-workers, the
#             largest pair; needs ESS_GUARD_SHARED or ../shared next to the repository)
#   --scale N concatenate N copies of each render, copy i in namespace ess-i (default 1)
#   --runs N  timed runs per tool (default 20)
# Uses hyperfine when installed (apt-get install -y hyperfine), else (or with
# BENCH_NO_HYPERFINE=1) a timed loop plus one run under /usr/bin/time.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
shared=${ESS_GUARD_SHARED:-$repo/../shared}
old="" new="" scale=1 runs=20
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) if [ -z "$old" ]; then old=$1; else new=$1; fi; shift ;;
  esac
done
old=${old:-$shared/ess-renders/step1-workers.yaml}
new=${new:-$shared/ess-renders/step2-workers.yaml}
for f in "$old" "$new"; do [ -f "$f" ] || { echo "bench-diff: no such file: $f" >&2; exit 2; }; done

(cd "$repo" && cargo build --release --quiet 2>"${TMPDIR:-/tmp}/bench-diff-build.log") ||
  { cat "${TMPDIR:-/tmp}/bench-diff-build.log" >&2; exit 1; }
bin=$repo/target/release/ess-guard
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Documents sorted by kind, namespace, name; with --scale, N namespaced copies.
prepare() {
  local src=$1 dst=$2 i
  : > "$work/raw"
  for i in $(seq 1 "$scale"); do
    if [ "$scale" -eq 1 ]; then cat "$src"; else sed -E "s/^(\s*namespace:) ess\$/\1 ess-$i/" "$src"; fi
    printf '\n---\n'
  done >> "$work/raw"
  perl -e '
    local $/; my $all = <STDIN>;
    my @docs = grep { /^kind:/m } split /^---[ \t]*\n/m, $all;
    my %key;
    for my $d (@docs) {
      my ($kind) = $d =~ /^kind:\s*(\S+)/m;
      my ($ns) = $d =~ /^  namespace:\s*(\S+)/m;
      my ($name) = $d =~ /^  name:\s*(\S+)/m;
      $key{$d} = join("\0", $kind // "", $ns // "", $name // "");
    }
    print map { "---\n$_" } sort { $key{$a} cmp $key{$b} } @docs;
  ' < "$work/raw" > "$dst"
}
prepare "$old" "$work/old.yaml"
prepare "$new" "$work/new.yaml"
echo "inputs: $(wc -c < "$work/old.yaml") and $(wc -c < "$work/new.yaml") bytes," \
     "$(grep -c '^---' "$work/old.yaml") and $(grep -c '^---' "$work/new.yaml") documents (sorted; scale $scale)"
echo "output: ess-guard $("$bin" diff --color never "$work/old.yaml" "$work/new.yaml" | wc -l) lines," \
     "diff -u $(diff -u "$work/old.yaml" "$work/new.yaml" | wc -l) lines"

guard_cmd="$bin diff --color never $work/old.yaml $work/new.yaml"
gnu_cmd="diff -u $work/old.yaml $work/new.yaml"

if [ -z "${BENCH_NO_HYPERFINE:-}" ] && command -v hyperfine >/dev/null; then
  hyperfine --warmup 3 --runs "$runs" -N -i --export-json "$work/h.json" \
    -n "ess-guard diff" "$guard_cmd" -n "diff -u" "$gnu_cmd" >&2
  python3 - "$work/h.json" <<'EOF'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
g, d = r["ess-guard diff"], r["diff -u"]
print(f"ess-guard diff: mean {g['mean']*1000:.2f} ms ± {g['stddev']*1000:.2f}, median {g['median']*1000:.2f} ms")
print(f"diff -u:        mean {d['mean']*1000:.2f} ms ± {d['stddev']*1000:.2f}, median {d['median']*1000:.2f} ms")
print(f"ratio (ess-guard / diff -u, medians): {g['median']/d['median']:.1f}x wall, "
      f"{(g['user']+g['system'])/(d['user']+d['system']):.1f}x CPU (user+sys)")
EOF
else
  time_loop() {
    local start end i
    start=$(date +%s%N)
    for i in $(seq 1 "$runs"); do $1 > /dev/null || true; done
    end=$(date +%s%N)
    echo $(( (end - start) / runs / 1000 ))
  }
  /usr/bin/time -f "ess-guard diff (one run): %e s wall, %M KiB max RSS" $guard_cmd > /dev/null || true
  g=$(time_loop "$guard_cmd")
  d=$(time_loop "$gnu_cmd")
  echo "ess-guard diff: mean $((g / 1000)).$(printf '%03d' $((g % 1000))) ms over $runs runs"
  echo "diff -u:        mean $((d / 1000)).$(printf '%03d' $((d % 1000))) ms over $runs runs"
  awk -v g="$g" -v d="$d" 'BEGIN { printf "ratio (ess-guard / diff -u): %.1fx\n", g / d }'
fi
