#!/usr/bin/env bash
# Prints the path of ballast-peer (the Go controller-runtime peer of Ballast's serving controller), built from
# this directory's go.mod into ${XDG_CACHE_HOME:-$HOME/.cache}/ballast/tools/ballast-peer-<version>/, where
# <version> is a hash of the sources: an edit builds a new binary, an unchanged tree reuses the cached one.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(cd "$here" && find . -name '*.go' -o -name 'go.mod' -o -name 'go.sum' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)"
exec "$here/../../../hack/build-go-tool.sh" ballast-peer "$version" "$here" . -ldflags "-s -w"
