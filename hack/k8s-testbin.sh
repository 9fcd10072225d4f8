#!/usr/bin/env bash
# Build the control-plane binaries the `controlplane` tests run: kube-apiserver and
# kube-controller-manager (k8s.io/kubernetes) and etcd (go.etcd.io/etcd/server/v3), from the Go
# module proxy. No registry ships kube-apiserver; Debian's etcd is too old for it.
#
#   hack/k8s-testbin.sh            build into the cache unless the binaries are there already
#   hack/k8s-testbin.sh --dir      print the directory the binaries are (or would be) in
#
# Output: $KUBEBUILDER_ASSETS when set, else ~/.cache/aam-gauntlet/k8s/<k8s version>/ .
# The timing of every build goes to build.log in that directory.
#
# k8s.io/kubernetes requires its ~30 staging modules at v0.0.0 and replaces them with
# ./staging/src/...; a throwaway module replaces each with its published v0.<minor>.<patch>
# (the list is read from the downloaded go.mod, so a new release brings its own list).
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/aam-gauntlet/k8s"
OUT="${KUBEBUILDER_ASSETS:-$CACHE_ROOT/${K8S_VERSION#v}}"
BINARIES=(etcd kube-apiserver kube-controller-manager)

if [[ "${1:-}" == "--dir" ]]; then
  echo "$OUT"
  exit 0
fi

have_all() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x "$OUT/$b" ]] || return 1; done
}

if have_all; then
  echo "k8s-testbin: $OUT has ${BINARIES[*]} (delete it to rebuild)"
  exit 0
fi

command -v go >/dev/null || { echo "k8s-testbin: needs Go (https://go.dev/dl/)" >&2; exit 2; }
mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/k8s-testbin.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
LOG="$OUT/build.log"
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=mod"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

stamp() { date -u +%Y-%m-%dT%H:%M:%SZ; }
log() { echo "$(stamp) $*" | tee -a "$LOG"; }
timed() { # timed <label> <command...>: run, log wall-clock seconds
  local label="$1" t0
  shift
  t0=$(date +%s)
  "$@"
  log "$label: $(($(date +%s) - t0))s"
}

log "start: kubernetes $K8S_VERSION, etcd $ETCD_VERSION, $(go version | cut -d' ' -f3), $(nproc) cores"
all_started=$(date +%s)

# --- kube-apiserver, kube-controller-manager ----------------------------------------------------
minor="${K8S_VERSION#v1.}" # 34.4
staging_version="v0.$minor"
mkdir -p "$WORK/k8s"
# k8s.io/kubernetes's own go.mod, through GOPROXY (the module proxy by default).
upstream_mod=$(cd "$WORK" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
  | sed -nE 's/^\s*"GoMod": "(.*)",?$/\1/p')
[[ -f "$upstream_mod" ]] || { echo "k8s-testbin: cannot download k8s.io/kubernetes@$K8S_VERSION" >&2; exit 1; }
cp "$upstream_mod" "$WORK/upstream.mod"
{
  echo "module aam-gauntlet/k8s-testbin/kubernetes"
  echo
  grep -E '^go [0-9.]+$' "$WORK/upstream.mod"
  grep -E '^godebug ' "$WORK/upstream.mod" || true
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  sed -nE 's#^\s*(k8s\.io/[A-Za-z0-9._-]+) => \./staging/src/k8s\.io/.*#\t\1 => \1 '"$staging_version"'#p' \
    "$WORK/upstream.mod"
  echo ")"
} >"$WORK/k8s/go.mod"
cat >"$WORK/k8s/tools.go" <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
EOF
# Downloading the modules is network-bound: it runs while etcd compiles.
timed "kubernetes modules resolved and downloaded" bash -c "cd '$WORK/k8s' && go get \
  k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION \
  k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION >/dev/null 2>&1 || true; \
  go mod tidy >/dev/null && go mod download" &
resolving=$!

# --- etcd ---------------------------------------------------------------------------------------
if [[ ! -x "$OUT/etcd" ]]; then
  mkdir -p "$WORK/etcd"
  cat >"$WORK/etcd/go.mod" <<EOF
module aam-gauntlet/k8s-testbin/etcd

go 1.24
EOF
  cat >"$WORK/etcd/main.go" <<'EOF'
// etcd's own main (go.etcd.io/etcd/v3 main.go): its root module has replace lines, so
// `go install go.etcd.io/etcd/v3@v` refuses; building etcdmain from this module works.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  (cd "$WORK/etcd" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1 \
    && go mod tidy >/dev/null)
  timed "etcd build" bash -c "cd '$WORK/etcd' && go build -trimpath -ldflags='-s -w' \
    -o '$WORK/etcd/etcd' . && mv '$WORK/etcd/etcd' '$OUT/etcd'"
fi

# --- build kube-apiserver, kube-controller-manager ---------------------------------------------
wait "$resolving" || { echo "k8s-testbin: resolving k8s.io/kubernetes $K8S_VERSION failed" >&2; exit 1; }
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor%%.*}"
  ldflags+=" -X $pkg.gitTreeState=clean"
done
for cmd in kube-apiserver kube-controller-manager; do
  [[ -x "$OUT/$cmd" ]] && continue
  timed "$cmd build" bash -c "cd '$WORK/k8s' && go build -trimpath \
    -tags selinux,notest,grpcnotrace -ldflags '$ldflags' -o '$WORK/$cmd' \
    k8s.io/kubernetes/cmd/$cmd && mv '$WORK/$cmd' '$OUT/$cmd'"
done

log "total: $(($(date +%s) - all_started))s -> $OUT"
have_all
