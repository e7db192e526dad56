#!/usr/bin/env bash
# Builds the real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kwok) from the Go modules pinned in go.mod/go.sum, into a cache keyed by those two files, and
# prints the directory that holds the binaries. A warm machine returns at once.
#
#   tooling/control-plane/build.sh            build if needed, print the bin directory
#   PIPELINE_CONTROL_PLANE_CACHE=/dir ...     where builds are kept (default ~/.cache/pipeline)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v go >/dev/null 2>&1; then
  echo "control-plane: Go is not installed; install Go 1.26 (https://go.dev/doc/install) to build the real Kubernetes control plane" >&2
  exit 2
fi
key="$(cat "$here/go.mod" "$here/go.sum" "$here/build.sh" | sha256sum | cut -c1-16)"
cache="${PIPELINE_CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pipeline/control-plane}"
out="$cache/$key"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
complete() { for b in "${binaries[@]}"; do [ -x "$out/$b" ] || return 1; done; }
if complete; then echo "$out"; exit 0; fi

mkdir -p "$cache"
tmp="$(mktemp -d "$cache/.build-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
echo "control-plane: building ${binaries[*]} (go $(go env GOVERSION), key $key); a cold build takes a long time" >&2
cd "$here"
# One go build for all five shares the compile cache and both cores; -trimpath and no debug
# information keep the binaries small and the link fast.
# The version the binaries report (kubectl version, /version, the nodes' kubeletVersion) is the
# one go.mod pins, stamped as the Kubernetes release build does.
k8s_version="$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' go.mod)"
k8s_minor="$(echo "$k8s_version" | cut -d. -f2)"
kv=k8s.io/component-base/version
ldflags="-s -w -X $kv.gitVersion=$k8s_version -X $kv.gitMajor=1 -X $kv.gitMinor=$k8s_minor -X $kv.gitTreeState=clean -X $kv.buildDate=1970-01-01T00:00:00Z"
GOFLAGS="${GOFLAGS:-} -mod=readonly" CGO_ENABLED=0 go build -trimpath -ldflags="$ldflags" -o "$tmp/" \
  go.etcd.io/etcd/server/v3 \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  sigs.k8s.io/kwok/cmd/kwok
# go names the etcd binary after its module path without the major version ("server").
[ -x "$tmp/server" ] && mv "$tmp/server" "$tmp/etcd"
for b in "${binaries[@]}"; do [ -x "$tmp/$b" ] || { echo "control-plane: $b was not built" >&2; exit 1; }; done
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "control-plane: built in $(( $(date +%s) - start ))s into $out" >&2
echo "$out"
