#!/usr/bin/env bash
# ensure-deb-tools.sh NAME PACKAGE...: prints a directory holding PACKAGE... (Debian's candidate versions)
# unpacked with `dpkg -x`, cached in ${XDG_CACHE_HOME:-$HOME/.cache}/ballast/tools/NAME-<hash of the versions>/.
# KEEP="usr/bin/x …" keeps only those paths (qemu-user-static is 371 MB of emulators; one is 5 MB).
# For the image tests' outside checks (podman to load the tarball, qemu-user-static to run the arm64 image):
# `apt-get download` needs no root and installs nothing; no maintainer script runs, nothing is registered.
set -euo pipefail
name="$1"
shift
command -v apt-get >/dev/null 2>&1 || { echo "ensure-deb-tools: $name needs apt-get (Debian or Ubuntu) to fetch $*" >&2; exit 1; }
candidates() { for p in "$@"; do echo "$p=$(apt-cache show --no-all-versions "$p" 2>/dev/null | awk '/^Version:/ {print $2; exit}')"; done; }
versions="$(candidates "$@")"
# A new machine starts with empty package lists: read them once (root only; nothing is installed).
if grep -q '=$' <<< "$versions" && [ "$(id -u)" = 0 ]; then
  apt-get update -q >&2 && versions="$(candidates "$@")"
fi
if grep -q '=$' <<< "$versions"; then
  echo "ensure-deb-tools: apt knows no candidate for: $(grep '=$' <<< "$versions" | tr -d = | tr '\n' ' ')(apt-get update?)" >&2
  exit 1
fi
out="${XDG_CACHE_HOME:-$HOME/.cache}/ballast/tools/$name-$(sha256sum <<< "$versions ${KEEP:-}" | cut -c1-12)"
if [ ! -d "$out" ]; then
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/ensure-deb-tools.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  echo "ensure-deb-tools: fetching $(tr '\n' ' ' <<< "$versions")into $out" >&2
  # shellcheck disable=SC2046
  (cd "$tmp" && apt-get download -q $(tr '\n' ' ' <<< "$versions") >&2 2> >(grep -v 'unsandboxed' >&2))
  mkdir -p "$tmp/root"
  for deb in "$tmp"/*.deb; do dpkg-deb --extract "$deb" "$tmp/root"; done
  if [ -n "${KEEP:-}" ]; then
    mkdir "$tmp/kept"
    for path in $KEEP; do install -D "$tmp/root/$path" "$tmp/kept/$path"; done
    rm -rf "$tmp/root" && mv "$tmp/kept" "$tmp/root"
  fi
  rm -rf "$out" && mv "$tmp/root" "$out"
fi
echo "$out"
