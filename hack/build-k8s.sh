#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler (and kubectl when asked)
# at the version pinned in hack/k8s/go.mod, into ${XDG_CACHE_HOME:-$HOME/.cache}/ballast/k8s/<version>/.
# Reuses binaries already there. Usage: hack/build-k8s.sh [--with-kubectl] [--print-dir]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mod="$here/k8s"
# A module's version is the word after its path, in a require block or a one-line require.
module_version() { awk -v m="$1" '$1=="require" && $2==m {print $3; exit} $1==m && $2 ~ /^v/ {print $2; exit}' "$mod/go.mod"; }
version="$(module_version k8s.io/kubernetes)"
etcd_version="$(module_version go.etcd.io/etcd/server/v3)"
[ -n "$version" ] && [ -n "$etcd_version" ] || { echo "build-k8s: cannot read versions from $mod/go.mod" >&2; exit 2; }
out="${XDG_CACHE_HOME:-$HOME/.cache}/ballast/k8s/${version#v}"
major_minor="${version#v}"; major="${major_minor%%.*}"; minor="${major_minor#*.}"; minor="${minor%%.*}"

# kubectl is built too unless one on PATH is within the supported skew (±1 minor) of this version.
with_kubectl=auto
for arg in "$@"; do
  case "$arg" in
    --with-kubectl) with_kubectl=1 ;;
    --print-dir) echo "$out"; exit 0 ;;
    *) echo "build-k8s: unknown argument $arg" >&2; exit 2 ;;
  esac
done

targets=(etcd=go.etcd.io/etcd/server/v3 kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver
  kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager
  kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler)
if [ "$with_kubectl" = auto ]; then
  with_kubectl=1
  if command -v kubectl >/dev/null 2>&1; then
    path_minor="$(kubectl version --client -o json 2>/dev/null | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | head -n1)"
    if [ -n "$path_minor" ] && [ $((path_minor - minor)) -le 1 ] && [ $((minor - path_minor)) -le 1 ]; then with_kubectl=0; fi
  fi
fi
[ "$with_kubectl" = 1 ] && targets+=(kubectl=k8s.io/kubernetes/cmd/kubectl)

mkdir -p "$out"
# Clients (kubectl version, client-go discovery) read these; without them the server reports v0.0.0.
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

todo=()
for t in "${targets[@]}"; do
  name="${t%%=*}"
  [ -x "$out/$name" ] || todo+=("$t")
done
if [ ${#todo[@]} -eq 0 ]; then
  echo "build-k8s: Kubernetes $version binaries present in $out"
  exit 0
fi

echo "build-k8s: building Kubernetes $version (etcd $etcd_version) into $out — takes several minutes on a cold cache"
cd "$mod"
i=0
for t in "${todo[@]}"; do
  i=$((i + 1)); name="${t%%=*}"; pkg="${t#*=}"; start=$SECONDS
  echo "build-k8s: [$i/${#todo[@]}] $name ($pkg)"
  # Build to a temp name then rename, so an interrupted build never leaves a half-written binary.
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/.$name.tmp" "$pkg"
  mv -f "$out/.$name.tmp" "$out/$name"
  echo "build-k8s: [$i/${#todo[@]}] $name done in $((SECONDS - start))s"
done
echo "build-k8s: binaries in $out"
