#!/usr/bin/env bash
# fetch.sh URL SHA256: prints the path of the file at URL in the download cache, downloading it once.
# The sha256 comes from image.lock and is checked on every use, so a cached or mirrored file that changed
# is refused rather than built into the image.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/image/config.sh
. "$here/config.sh"
url="$1" sha="$2"
dir="$CACHE_DIR/downloads"
file="$dir/$sha-$(basename "${url%%\?*}")"
if [ ! -f "$file" ]; then
  mkdir -p "$dir"
  echo "image: downloading $url" >&2
  curl -fsSL --retry 3 "$url" -o "$file.part"
  mv -f "$file.part" "$file"
fi
actual="$(sha256sum "$file" | cut -d' ' -f1)"
if [ "$actual" != "$sha" ]; then
  rm -f "$file"
  echo "image: $url has sha256 $actual, image.lock pins $sha; refusing it (run hack/image/lock.sh if the pin is what changed)" >&2
  exit 1
fi
echo "$file"
