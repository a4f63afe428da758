#!/usr/bin/env bash
# `make image-push IMAGE=<registry>/<repo>:<tag>`: pushes the multi-arch index that `make image` wrote to
# dist/image/oci, with the same pinned crane. Credentials come from the docker config crane reads
# (~/.docker/config.json or $DOCKER_CONFIG; `crane auth login` writes it); none pass through here.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
image="${1:-}"
layout="${2:-$repo/dist/image/oci}"
[ -n "$image" ] || { echo "image-push: name the destination: make image-push IMAGE=<registry>/<repo>:<tag>" >&2; exit 2; }
[ -f "$layout/index.json" ] || { echo "image-push: no OCI layout at $layout: run \`make image\` first" >&2; exit 2; }
crane_bin="$("$here/ensure-crane.sh")"
# The layout holds one entry, the multi-arch index, so a plain push sends exactly it (same digest as
# dist/image/digests); --index would wrap it in another index.
"$crane_bin" push "$layout" "$image"
