#!/usr/bin/env bash
# Builds kubeconform from the pinned Go module under tests/cluster/kubeconform, and copies the
# OpenAPI document of the pinned Kubernetes (api/openapi-spec/swagger.json of the k8s.io/kubernetes
# module that tests/cluster/go/k8s builds) beside it, into a cache directory of its own: changing
# this module never invalidates the 13-minute build of the control plane (build-binaries.sh).
# Does nothing when the cache's stamp matches the hash of the inputs.
#
#   tests/cluster/build-kubeconform.sh       # prints the cache directory on its last line
#   (it holds bin/kubeconform and openapi/swagger.json; the tests turn that into JSON schemas)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src="$here/kubeconform"
k8s_version=$(awk '$1 == "k8s.io/kubernetes" {print $2; exit}' "$here/go/k8s/go.mod")
kubeconform_version=$(awk '$1 == "github.com/yannh/kubeconform" {print $2; exit}' "$src/go.mod")
inputs_hash=$( (sha256sum "$src/go.mod" "$src/go.sum" "$here/build-kubeconform.sh" | cut -d' ' -f1;
  echo "$k8s_version") | sha256sum | cut -c1-16)
cache_root=${GITSTAGE_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gitstage}
out="$cache_root/kubeconform-$kubeconform_version-$inputs_hash"

if [ -f "$out/.complete" ]; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { echo "build-kubeconform: Go is required (go >= 1.25)" >&2; exit 1; }
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
mkdir -p "$out/bin" "$out/openapi"
echo "build-kubeconform: kubeconform $kubeconform_version" >&2
(cd "$src" && go build -trimpath -ldflags "-s -w -X main.version=$kubeconform_version" -o "$out/bin/kubeconform" \
  github.com/yannh/kubeconform/cmd/kubeconform)
echo "build-kubeconform: OpenAPI document of k8s.io/kubernetes $k8s_version" >&2
module_dir=$(cd "$here/go/k8s" && go mod download -json "k8s.io/kubernetes@$k8s_version" \
  | awk -F'"' '$2 == "Dir" {print $4}')
cp "$module_dir/api/openapi-spec/swagger.json" "$out/openapi/swagger.json"
chmod 0644 "$out/openapi/swagger.json"
echo "$k8s_version" >"$out/openapi/kubernetes-version"
touch "$out/.complete"
echo "$out"
