#!/usr/bin/env bash
# Prints the directory holding prometheus-operator's CRDs (monitoring.coreos.com_*.yaml) at the version pinned in
# hack/prometheus-operator/go.mod, from the Go module cache (downloaded once, checked against go.sum). Nothing is built.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module=github.com/prometheus-operator/prometheus-operator
command -v go >/dev/null 2>&1 || { echo "ensure-crds: go is not installed to download $module" >&2; exit 1; }
dir="$(cd "$here" && go mod download -json "$module" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[ -d "$dir/example/prometheus-operator-crd" ] || { echo "ensure-crds: no CRDs under $dir/example/prometheus-operator-crd" >&2; exit 1; }
echo "$dir/example/prometheus-operator-crd"
