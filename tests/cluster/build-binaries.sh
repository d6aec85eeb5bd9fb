#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
# etcd, kwok, helm) and the real node's kubelet and kube-proxy from the pinned Go modules under tests/cluster/go into a cache outside the
# repository. Does nothing when the cache's stamp matches the hash of the module files.
#
#   tests/cluster/build-binaries.sh          # prints the bin directory on its last line
#   GITSTAGE_BIN_CACHE=/elsewhere tests/cluster/build-binaries.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src="$here/go"
k8s_version=$(awk '$1 == "k8s.io/kubernetes" {print $2; exit}' "$src/k8s/go.mod")
inputs_hash=$( (cd "$src" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) | LC_ALL=C sort \
  | xargs sha256sum; sha256sum "$here/build-binaries.sh" | cut -d' ' -f1) | sha256sum | cut -c1-16)
cache_root=${GITSTAGE_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gitstage}
out="$cache_root/k8s-$k8s_version-$inputs_hash/bin"

if [ -f "$out/.complete" ]; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { echo "build-binaries: Go is required (go >= 1.26)" >&2; exit 1; }
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
mkdir -p "$out"
started=$(date +%s)
step() { echo "build-binaries: $* ($(( $(date +%s) - started ))s elapsed)" >&2; }

minor=$(echo "$k8s_version" | cut -d. -f2)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags="$ldflags -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
done
ldflags="$ldflags -X k8s.io/component-base/version.gitTreeState=clean"
ldflags="$ldflags -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"

step "kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet, kube-proxy $k8s_version"
(cd "$src/k8s" && go build -p 2 -trimpath -ldflags "$ldflags" -o "$out/" \
  ./cmd/kube-apiserver ./cmd/kube-controller-manager ./cmd/kube-scheduler ./cmd/kubectl \
  ./cmd/kubelet ./cmd/kube-proxy)
step "etcd"
(cd "$src/etcd" && go build -trimpath -ldflags "-s -w" -o "$out/etcd" .)
step "kwok"
(cd "$src/tools" && go build -trimpath -ldflags "-s -w" -o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok)
step "helm"
(cd "$src/helm" && go build -trimpath -ldflags "-s -w" -o "$out/helm" helm.sh/helm/v3/cmd/helm)
touch "$out/.complete"
step "done: $(du -sh "$out" | cut -f1) in $out"
echo "$out"
