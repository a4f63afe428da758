#!/usr/bin/env bash
# Prints the path of a crane binary built from the go-containerregistry module pinned in hack/image/go.mod,
# cached in ${XDG_CACHE_HOME:-$HOME/.cache}/ballast/tools/crane-<version>/ (built once, reused).
# Always the pinned one, never a crane on PATH: another version could write different bytes, and the
# image's digest is meant to depend only on the commit.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module=github.com/google/go-containerregistry
version="$(awk -v m="$module" '$1=="require" && $2==m {print $3} $1==m && $2 ~ /^v/ {print $2}' "$here/go.mod" | head -1)"
[ -n "$version" ] || { echo "ensure-crane: cannot read the $module version from $here/go.mod" >&2; exit 2; }
exec "$here/../build-go-tool.sh" crane "$version" "$here" "$module/cmd/crane" -ldflags "-s -w"
