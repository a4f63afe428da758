#!/usr/bin/env bash
# Prints the path of a `registry` binary (CNCF distribution) built from the module pinned in hack/registry/go.mod,
# cached in ${XDG_CACHE_HOME:-$HOME/.cache}/ballast/tools/registry-<version>/ (built once, reused).
# Used by the release tests and `make release-push` against a throwaway local registry.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module=github.com/distribution/distribution/v3
version="$(awk -v m="$module" '$1=="require" && $2==m {print $3} $1==m && $2 ~ /^v/ {print $2}' "$here/go.mod" | head -1)"
[ -n "$version" ] || { echo "ensure-registry: cannot read the $module version from $here/go.mod" >&2; exit 2; }
exec "$here/../build-go-tool.sh" registry "$version" "$here" "$module/cmd/registry" -ldflags "-s -w -X $module/version.version=$version"
