#!/usr/bin/env bash
# ensure-prometheus.sh [prometheus|promtool]
# Prints the path of the Prometheus server (default) or promtool, built from the module pinned in
# hack/prometheus/go.mod and cached in ${XDG_CACHE_HOME:-$HOME/.cache}/ballast/tools/<name>-<version>/ (built once,
# reused). Used by `ballast dev up --prometheus` and the observability tests.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name="${1:-prometheus}"
case "$name" in prometheus | promtool) ;; *) echo "ensure-prometheus: unknown tool $name (prometheus or promtool)" >&2; exit 2 ;; esac
module=github.com/prometheus/prometheus
version="$(awk -v m="$module" '$1=="require" && $2==m {print $3} $1==m && $2 ~ /^v/ {print $2}' "$here/go.mod" | head -1)"
[ -n "$version" ] || { echo "ensure-prometheus: cannot read the $module version from $here/go.mod" >&2; exit 2; }
# The Go module v0.3MM.P is Prometheus 3.MM.P: report that as the version, as the upstream release does.
release="$(echo "$version" | sed -E 's/^v0\.3([0-9]{2})\.([0-9]+)$/3.\1.\2/; s/^3\.0([0-9])/3.\1/')"
# Only Kubernetes service discovery: the other 25 cloud SDs would triple the build and are never configured here.
exec "$here/../build-go-tool.sh" "$name" "$version" "$here" "$module/cmd/$name" \
  -tags remove_all_sd,enable_kubernetes_sd \
  -ldflags "-s -w -X github.com/prometheus/common/version.Version=$release -X github.com/prometheus/common/version.Branch=$version"
