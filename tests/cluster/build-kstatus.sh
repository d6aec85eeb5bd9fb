#!/usr/bin/env bash
# Builds `kstatus` (tests/cluster/go/kstatus: a few lines around sigs.k8s.io/cli-utils'
# kstatus package, the rules kubectl, Flux and kpt use to call an object in progress, failed or
# current) into a cache directory of its own. Does nothing when the cache's stamp matches.
#
#   tests/cluster/build-kstatus.sh      # prints the binary's path on its last line
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src="$here/go/kstatus"
version=$(awk '$1 == "sigs.k8s.io/cli-utils" {print $2; exit}' "$src/go.mod")
inputs_hash=$(sha256sum "$src/go.mod" "$src/go.sum" "$src/main.go" "$here/build-kstatus.sh" \
  | cut -d' ' -f1 | sha256sum | cut -c1-16)
cache_root=${GITSTAGE_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gitstage}
out="$cache_root/kstatus-$version-$inputs_hash"

if [ -f "$out/.complete" ]; then
  echo "$out/bin/kstatus"
  exit 0
fi

command -v go >/dev/null || { echo "build-kstatus: Go is required (go >= 1.25)" >&2; exit 1; }
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
mkdir -p "$out/bin"
echo "build-kstatus: sigs.k8s.io/cli-utils $version" >&2
(cd "$src" && go build -trimpath -ldflags "-s -w" -o "$out/bin/kstatus" .)
touch "$out/.complete"
echo "$out/bin/kstatus"
