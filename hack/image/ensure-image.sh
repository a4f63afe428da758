#!/usr/bin/env bash
# ensure-image.sh [OUT_DIR]: `make image` into OUT_DIR (default dist/image) unless OUT_DIR already holds the
# build of this commit from these very inputs (what hack/image/build.sh reads: src/, crds/, hack/image/, the
# package files; a test file edited since does not count). Under a lock, so test files that need the image
# (the unit image test, the local nodes' image test) build it once between them, whichever starts first, and
# never write one directory at the same time.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:-$repo/dist/image}"
mkdir -p "$(dirname "$out")"
exec 9> "$out.lock"
flock 9
# The revision label build.sh will write (the commit, -dirty with uncommitted changes) and the content of
# every input file, committed or not.
revision="$(git -C "$repo" rev-parse HEAD)"
[ -z "$(git -C "$repo" status --porcelain --untracked-files=no)" ] || revision="$revision-dirty"
key="$revision $(cd "$repo" && find src crds hack/image package.json package-lock.json tsconfig.json -type f -print0 |
  LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
if [ -f "$out/digests" ] && [ "$(cat "$out/inputs" 2>/dev/null)" = "$key" ]; then
  echo "image: $out already holds the build of these inputs ($key); reusing it" >&2
  cat "$out/digests"
  exit 0
fi
rm -f "$out/inputs"
"$here/build.sh" "$out"
echo "$key" > "$out/inputs"
