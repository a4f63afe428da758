#!/usr/bin/env bash
# Prints the path of a `weed` binary (SeaweedFS) built from the module pinned in hack/seaweedfs/go.mod,
# cached in ${XDG_CACHE_HOME:-$HOME/.cache}/ballast/tools/weed-<version>/ (built once, reused).
# Used by the s3:// model store tests, which start `weed server -s3` as a real S3-compatible endpoint.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module=github.com/seaweedfs/seaweedfs
version="$(awk -v m="$module" '$1=="require" && $2==m {print $3} $1==m && $2 ~ /^v/ {print $2}' "$here/go.mod" | head -1)"
[ -n "$version" ] || { echo "ensure-seaweedfs: cannot read the $module version from $here/go.mod" >&2; exit 2; }
exec "$here/../build-go-tool.sh" weed "$version" "$here" "$module/weed" -ldflags "-s -w"
