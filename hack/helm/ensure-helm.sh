#!/usr/bin/env bash
# Prints the path of a helm binary: the one on PATH, else one built from the Helm Go module pinned in
# hack/helm/go.mod into ${XDG_CACHE_HOME:-$HOME/.cache}/ballast/tools/helm-<version>/ (built once, reused).
set -euo pipefail
if command -v helm >/dev/null 2>&1; then command -v helm; exit 0; fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(awk '$1=="require" && $2=="helm.sh/helm/v4" {print $3} $1=="helm.sh/helm/v4" && $2 ~ /^v/ {print $2}' "$here/go.mod" | head -1)"
[ -n "$version" ] || { echo "ensure-helm: cannot read the helm.sh/helm/v4 version from $here/go.mod" >&2; exit 2; }
out="${XDG_CACHE_HOME:-$HOME/.cache}/ballast/tools/helm-$version"
if [ ! -x "$out/helm" ]; then
  command -v go >/dev/null 2>&1 || { echo "ensure-helm: helm is not on PATH and go is not installed to build it" >&2; exit 1; }
  mkdir -p "$out"
  echo "ensure-helm: building helm $version into $out (a few minutes on a cold Go cache, seconds on a warm one)" >&2
  # Build to a temp name then rename, so an interrupted build never leaves a half-written binary.
  (cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version" \
    -o "$out/.helm.tmp" helm.sh/helm/v4/cmd/helm) >&2
  mv -f "$out/.helm.tmp" "$out/helm"
fi
echo "$out/helm"
