#!/usr/bin/env bash
# Builds kubeconform from the pinned Go module under tests/cluster/kubeconform, and copies the
# OpenAPI document of the pinned Kubernetes (api/openapi-spec/swagger.json of the k8s.io/kubernetes
# module that tests/cluster/go/k8s builds) beside it, into a cache directory of its own: changing
# this module never invalidates the 13-minute build of the control plane (build-binaries.sh).
# The prometheus-operator CRDs the chart's monitoring objects need (ServiceMonitor, PodMonitor,
# PrometheusRule) come from the pinned Go module under kubeconform/crds, copied into crds/.
# Does nothing when the cache's stamp matches the hash of the inputs.
#
#   tests/cluster/build-kubeconform.sh       # prints the cache directory on its last line
#   (it holds bin/kubeconform, openapi/swagger.json and crds/*.yaml; the tests turn those into
#   JSON schemas)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src="$here/kubeconform"
k8s_version=$(awk '$1 == "k8s.io/kubernetes" {print $2; exit}' "$here/go/k8s/go.mod")
kubeconform_version=$(awk '$1 == "github.com/yannh/kubeconform" {print $2; exit}' "$src/go.mod")
operator_module=github.com/prometheus-operator/prometheus-operator
operator_version=$(awk -v m="$operator_module" '$1 == "require" && $2 == m {print $3; exit}' \
  "$src/crds/go.mod")
inputs_hash=$( (sha256sum "$src/go.mod" "$src/go.sum" "$src/crds/go.mod" "$src/crds/go.sum" \
  "$here/build-kubeconform.sh" | cut -d' ' -f1; echo "$k8s_version") | sha256sum | cut -c1-16)
cache_root=${GITSTAGE_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gitstage}
out="$cache_root/kubeconform-$kubeconform_version-$inputs_hash"

if [ -f "$out/.complete" ]; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { echo "build-kubeconform: Go is required (go >= 1.26)" >&2; exit 1; }
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
mkdir -p "$out/bin" "$out/openapi" "$out/crds"
echo "build-kubeconform: kubeconform $kubeconform_version" >&2
(cd "$src" && go build -trimpath -ldflags "-s -w -X main.version=$kubeconform_version" -o "$out/bin/kubeconform" \
  github.com/yannh/kubeconform/cmd/kubeconform)
echo "build-kubeconform: OpenAPI document of k8s.io/kubernetes $k8s_version" >&2
module_dir=$(cd "$here/go/k8s" && go mod download -json "k8s.io/kubernetes@$k8s_version" \
  | awk -F'"' '$2 == "Dir" {print $4}')
cp "$module_dir/api/openapi-spec/swagger.json" "$out/openapi/swagger.json"
chmod 0644 "$out/openapi/swagger.json"
echo "$k8s_version" >"$out/openapi/kubernetes-version"
echo "build-kubeconform: monitoring CRDs of $operator_module $operator_version" >&2
operator_dir=$(cd "$src/crds" && go mod download -json "$operator_module" \
  | awk -F'"' '$2 == "Dir" {print $4}')
for kind in servicemonitors podmonitors prometheusrules; do
  install -m 0644 "$operator_dir/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" \
    "$out/crds/"
done
touch "$out/.complete"
echo "$out"
