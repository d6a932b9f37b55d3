#!/usr/bin/env bash
# Counts, for each revision given (default HEAD), the production functions
# over 60 lines (hack/funclen) and the repeated blocks (the duplicates
# command), in the whole module and in gitops/ and internal/. Each revision
# is read from `git archive`, so the working tree (and other people's
# uncommitted work in it) does not count.
#
#   hack/measure-debt.sh e6fb9f1 HEAD
#
# "production pairs" leaves out pairs with a _test.go side; "less imports"
# also leaves out pairs whose two sides both start in a file's first nine
# lines (import blocks, which a split into files repeats). The last line
# lists the functions that cut text or redact URLs.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
(cd "$root" && go build -o "$bin/funclen" ./hack/funclen)
[ $# -gt 0 ] || set -- HEAD
for rev in "$@"; do
	dir=$(mktemp -d -p "$bin")
	git -C "$root" archive "$rev" | tar -x -C "$dir"
	echo "== $rev ($(git -C "$root" rev-parse --short "$rev"))"
	for scope in . gitops internal gitops/gitrepo; do
		echo "functions over 60 lines in $scope: $(cd "$dir" && "$bin/funclen" "$scope" | tail -1)"
	done
	for spec in .:6 gitops:6 gitops:4 internal:4; do
		scope=${spec%%:*} min=${spec##*:}
		out=$(duplicates --repo "$dir/$scope" --min-lines "$min" --most 200 --seconds 120)
		rows=$(grep -E '^D[0-9]+ ' <<<"$out" | grep -v '_test\.go' || true)
		prod=$(grep -c . <<<"$rows" || true)
		noimp=$(grep -vcE '\.go:[1-9]-[0-9]+ ~ [^ ]+\.go:[1-9]-[0-9]+' <<<"$rows" || true)
		echo "repeated blocks of $min+ lines in $scope: $(head -1 <<<"$out" | cut -d'(' -f1)| production pairs $prod, less imports $noimp"
	done
	echo "text helpers (truncation, URL redaction): $(cd "$dir" && grep -rhoE --include='*.go' --exclude='*_test.go' \
		'^func (\([^)]*\) )?(truncate|Truncate|clip|utf8RuneStart|isRuneStart|redactURL|RedactURL|stripUserinfo|SanitizeURL)\(' . |
		sed -E 's/^func (\([^)]*\) )?//; s/\($//' | sort | uniq -c | awk '{printf "%s x%s, ", $2, $1}')"
	rm -rf "$dir"
done
