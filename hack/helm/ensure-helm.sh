#!/usr/bin/env bash
# Prints the path of a helm binary: the one on PATH, else one built from the Helm Go module pinned in
# hack/helm/go.mod into ${XDG_CACHE_HOME:-$HOME/.cache}/ballast/tools/helm-<version>/ (built once, reused).
set -euo pipefail
if command -v helm >/dev/null 2>&1; then command -v helm; exit 0; fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(awk '$1=="require" && $2=="helm.sh/helm/v4" {print $3} $1=="helm.sh/helm/v4" && $2 ~ /^v/ {print $2}' "$here/go.mod" | head -1)"
[ -n "$version" ] || { echo "ensure-helm: cannot read the helm.sh/helm/v4 version from $here/go.mod" >&2; exit 2; }
exec "$here/../build-go-tool.sh" helm "$version" "$here" helm.sh/helm/v4/cmd/helm \
  -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version"
