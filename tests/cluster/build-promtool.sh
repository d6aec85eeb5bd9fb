#!/usr/bin/env bash
# Builds promtool, Prometheus's rule checker and rule unit-test runner, from the pinned Go module
# under tests/cluster/promtool into a cache directory of its own. The service-discovery plugins
# are left out (build tag remove_all_sd): promtool only checks and tests rule files here.
# Does nothing when the cache's stamp matches the hash of the inputs.
#
#   tests/cluster/build-promtool.sh          # prints the cache directory on its last line
#   (it holds bin/promtool; tests/unit/test_chart_monitoring.py runs it)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src="$here/promtool"
version=$(awk '$1 == "github.com/prometheus/prometheus" {print $2; exit}' "$src/go.mod")
inputs_hash=$(sha256sum "$src/go.mod" "$src/go.sum" "$here/build-promtool.sh" | cut -d' ' -f1 \
  | sha256sum | cut -c1-16)
cache_root=${GITSTAGE_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gitstage}
out="$cache_root/promtool-$version-$inputs_hash"

if [ -f "$out/.complete" ]; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { echo "build-promtool: Go is required (go >= 1.26)" >&2; exit 1; }
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
mkdir -p "$out/bin"
echo "build-promtool: promtool of github.com/prometheus/prometheus $version (about 3 min cold)" >&2
(cd "$src" && go build -p 2 -tags remove_all_sd -trimpath \
  -ldflags "-s -w -X github.com/prometheus/common/version.Version=$version" \
  -o "$out/bin/promtool" github.com/prometheus/prometheus/cmd/promtool)
touch "$out/.complete"
echo "$out"
