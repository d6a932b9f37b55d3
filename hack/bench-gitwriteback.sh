#!/usr/bin/env bash
# Git write-back latency: cached clone vs fresh clone vs the git CLI, on a
# generated repository (20,000 files, 5,000 commits by default) served over
# smart HTTP with authentication on 127.0.0.1. Prints the median of COUNT runs
# of ITERS write-backs each, and the ratios.
#
#   hack/bench-gitwriteback.sh            # COUNT=5 ITERS=5
#   BENCH_GIT_FILES=2000 BENCH_GIT_COMMITS=500 hack/bench-gitwriteback.sh   # quick
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${COUNT:-5}"
ITERS="${ITERS:-5}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
go test ./gitops/gitrepo -run '^$' -bench 'BenchmarkWriteBack' -benchtime "${ITERS}x" -count "$COUNT" -timeout 60m | tee "$out"
awk '
/^BenchmarkWriteBack\// {
  name = $1; sub(/^BenchmarkWriteBack\//, "", name); sub(/-[0-9]+$/, "", name)
  v[name] = v[name] " " $3
}
function median(s,   a, n, i, j, t) {
  n = split(s, a, " ")
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
END {
  c = median(v["cached"]); f = median(v["fresh-clone"]); g = median(v["git-cli"])
  printf "\nmedian ms/write-back: cached %.1f  fresh-clone %.1f  git-cli %.1f\n", c / 1e6, f / 1e6, g / 1e6
  printf "cached / git-cli = %.2fx (goal <= 1.5x)   fresh-clone / cached = %.1fx (goal >= 10x)\n", c / g, f / c
}' "$out"
