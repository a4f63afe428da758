#!/usr/bin/env bash
# `make release-push REGISTRY=<host>[:port]/<path>`: pushes the chart `make release-artifacts` packaged to
# oci://REGISTRY/charts (helm install oci://REGISTRY/charts/ballast --version <version>) and, when `make image`
# has written dist/image/oci, the image to REGISTRY/ballast:<appVersion> (the name the chart's values default to
# when REGISTRY is ghcr.io/ballast-dev). Plain HTTP only for a loopback registry (127.0.0.1, localhost, [::1]),
# which never leaves the machine; any other registry is HTTPS. Credentials come from `helm registry login` and
# the docker config crane reads; none pass through here.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
registry="${1:-}"
release_dir="${2:-$repo/dist/release}"
image_layout="${3:-$repo/dist/image/oci}"
[ -n "$registry" ] || { echo "release-push: name the registry: make release-push REGISTRY=<host>[:port]/<path>" >&2; exit 2; }
case "$registry" in *://*) echo "release-push: REGISTRY is <host>[:port]/<path>, without a scheme (got $registry)" >&2; exit 2 ;; esac
registry="${registry%/}"

shopt -s nullglob
charts=("$release_dir"/ballast-*.tgz)
[ "${#charts[@]}" -eq 1 ] || { echo "release-push: expected one chart in $release_dir, found ${#charts[@]}: run \`make release-artifacts\` first" >&2; exit 2; }
chart="${charts[0]}"
(cd "$release_dir" && sha256sum --quiet -c SHA256SUMS) || { echo "release-push: $release_dir does not match its SHA256SUMS" >&2; exit 2; }

helm_flags=() crane_flags=()
case "${registry%%/*}" in
  127.0.0.1 | 127.0.0.1:* | localhost | localhost:* | "[::1]" | "[::1]:"*) helm_flags=(--plain-http) crane_flags=(--insecure) ;;
esac

"$("$repo/hack/helm/ensure-helm.sh")" push "${helm_flags[@]}" "$chart" "oci://$registry/charts"
if [ -f "$image_layout/index.json" ]; then
  app_version="$(tar -xzOf "$chart" ballast/Chart.yaml | awk '$1=="appVersion:" {gsub(/"/, "", $2); print $2; exit}')"
  "$("$repo/hack/image/ensure-crane.sh")" push "${crane_flags[@]}" "$image_layout" "$registry/ballast:$app_version"
else
  echo "release-push: no image at $image_layout (run \`make image\` to build it); pushed the chart only" >&2
fi
